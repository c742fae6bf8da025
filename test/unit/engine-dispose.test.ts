// dispose() frees native memory, is idempotent, and any later use is an error.
import { describe, expect, it } from 'vitest'
import { EngineError } from '../../src-main/engine/errors.ts'
import { EngineModel } from '../../src-main/engine/model.ts'
import { tinyModel } from '../helpers/engine.ts'

function rssMiB(): number {
  return process.memoryUsage().rss / 2 ** 20
}

describe('engine: dispose', () => {
  it('frees the native memory of a model', async () => {
    // ~60 M floats of parameters (+ optimizer state) = several hundred MiB, far above noise.
    const cfg = { vocabSize: 16384, nPositions: 512, nEmbd: 512, nLayer: 8, nHead: 8 }
    const before = rssMiB()
    const m = await EngineModel.create(cfg, 1)
    await m.trainInit({})
    const stats = await m.memoryStats()
    const paramMiB = (m.paramCount * 4) / 2 ** 20
    expect(stats.allocatedBytes).toBeGreaterThanOrEqual(m.paramCount * 4)
    const loaded = rssMiB()
    expect(loaded - before).toBeGreaterThan(paramMiB)
    m.dispose()
    const after = rssMiB()
    // At least the parameters' worth of RSS goes back to the system.
    expect(loaded - after).toBeGreaterThan(paramMiB)
  })

  it('is idempotent, and use after dispose throws', async () => {
    const m = await tinyModel(2)
    m.dispose()
    m.dispose()
    expect(m.disposed).toBe(true)
    expect(() => m.config).toThrow(/disposed/)
    await expect(m.forward({ tokens: [1, 2], B: 1, T: 2 })).rejects.toThrow(/disposed/)
    await expect(m.getParams()).rejects.toBeInstanceOf(EngineError)
    await expect(m.generator(4)).rejects.toMatchObject({ engineCode: 'LCX_ERR_DISPOSED' })
    await m[Symbol.asyncDispose]()
  })

  it('lets calls made before dispose finish, then frees', async () => {
    const m = await tinyModel(3)
    const pending = m.forward({ tokens: [1, 2, 3], targets: [2, 3, -1], B: 1, T: 3 })
    m.dispose()
    const r = await pending
    expect(Number.isFinite(r.loss)).toBe(true)
  })

  it('disposes generators with their model', async () => {
    const m = await tinyModel(4)
    const g = await m.generator(8)
    await g.feed([1, 2, 3])
    g.dispose()
    g.dispose()
    await expect(g.next()).rejects.toMatchObject({ engineCode: 'LCX_ERR_DISPOSED' })
    const g2 = await m.generator(8)
    m.dispose()
    expect(g2.disposed).toBe(true)
    await expect(g2.feed([1])).rejects.toMatchObject({ engineCode: 'LCX_ERR_DISPOSED' })
  })

  it('supports await using', async () => {
    let outer: EngineModel | undefined
    {
      await using m = await tinyModel(5)
      outer = m
      expect(m.paramCount).toBeGreaterThan(0)
    }
    expect(outer.disposed).toBe(true)
  })
})
