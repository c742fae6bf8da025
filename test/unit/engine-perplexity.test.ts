// The windowing rule of `longctx score` / evaluation, and batching that does not change results.
import { describe, expect, it } from 'vitest'
import { cutWindows, perplexityPerWindow } from '../../src-main/engine/perplexity.ts'
import { randomIds, tinyModel } from '../helpers/engine.ts'

describe('perplexity per window', () => {
  it('cuts full windows and keeps a tail of at least 2 tokens', () => {
    expect(cutWindows(10, 4)).toEqual([
      { start: 0, length: 4 },
      { start: 4, length: 4 },
      { start: 8, length: 2 },
    ])
    expect(cutWindows(9, 4)).toHaveLength(2) // a 1-token tail predicts nothing
    expect(cutWindows(8, 4)).toHaveLength(2)
    expect(cutWindows(1, 4)).toEqual([])
    expect(cutWindows(3, 4)).toEqual([{ start: 0, length: 3 }])
    expect(() => cutWindows(10, 1)).toThrow()
  })

  it('batched windows give the same result as one window per call', async () => {
    const m = await tinyModel(71)
    try {
      const ids = randomIds(16 * 7 + 5, 96, 4)
      const one = await perplexityPerWindow(m, ids, 16, { batchTokens: 1 })
      const many = await perplexityPerWindow(m, ids, 16, { batchTokens: 64 })
      expect(one).toMatchObject({ tokens: ids.length, windows: 8, predictions: 7 * 15 + 4 })
      expect(many.predictions).toBe(one.predictions)
      expect(many.nll).toBeCloseTo(one.nll, 5)
      // A random model is close to uniform over the vocabulary.
      expect(one.ppl).toBeGreaterThan(96 / 3)
      expect(one.ppl).toBeLessThan(96 * 3)
    } finally {
      m.dispose()
    }
  })
})
