// The evaluation pieces: the same held-out text for every window length, perplexity that agrees
// with the engine's own windowed perplexity, sliding windows, and the passkey prompt.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DatasetReader } from '../../src-main/core/datasets/store.ts'
import { loadTokenizer, type Tokenizer } from '../../src-main/core/tokenizer/index.ts'
import { EngineModel } from '../../src-main/engine/model.ts'
import { perplexityPerWindow } from '../../src-main/engine/perplexity.ts'
import { evaluationSpans, passkeyNeedle, passkeyPrompt, perplexityOnSpans, slidingOnSpans } from '../../src-main/worker/evaluate.ts'
import { fixtureModel, runTestData, type RunTestData } from '../helpers/runs.ts'
import { join } from 'node:path'

let data: RunTestData
let reader: DatasetReader
let model: EngineModel
let tok: Tokenizer

beforeAll(async () => {
  data = await runTestData()
  reader = await DatasetReader.open(join(data.datasetsDir, data.datasetId))
  model = await EngineModel.load(fixtureModel)
  await model.extendPositions(512, 'tile')
  tok = await loadTokenizer(fixtureModel)
})
afterAll(async () => {
  model?.dispose()
  await reader?.close()
  await data?.cleanup()
})

describe('evaluation', () => {
  it('cuts spans of the longest reachable length, and scores every length on the same text', async () => {
    const spans = evaluationSpans(reader, [128, 256, 512, 1 << 20], 3)
    expect(spans.map((s) => s.length)).toEqual([512, 512, 512])
    const r128 = await perplexityOnSpans(model, reader, spans, 128, 1024)
    const r512 = await perplexityOnSpans(model, reader, spans, 512, 1024)
    expect(r128!.predictions).toBe(3 * 4 * 127)
    expect(r512!.predictions).toBe(3 * 511)
    // one span = one window: the engine's own windowed perplexity over the spans' tokens agrees
    const ids: number[] = []
    for (const s of spans) {
      const buf = new Int32Array(s.length)
      await reader.readDocument(s.doc, s.offset, s.length, buf)
      ids.push(...buf)
    }
    const ref = await perplexityPerWindow(model, ids, 512)
    expect(r512!.ppl).toBeCloseTo(ref.ppl, 4)
    expect(await perplexityOnSpans(model, reader, [], 128, 1024)).toBeNull()
  })

  it('sliding windows score the span tokens once each, with at least length - stride of context', async () => {
    const spans = evaluationSpans(reader, [512], 2)
    const s = await slidingOnSpans(model, reader, spans, 256, 64, 1000)
    expect(s).toMatchObject({ length: 256, stride: 64 })
    expect(Number.isFinite(s!.ppl)).toBe(true)
    // a stride of the whole length is not a sliding window
    expect(await slidingOnSpans(model, reader, spans, 256, 256, 1000)).toBeNull()
    // the forward budget takes whole spans: 8 forwards per 512-token span at stride 64
    const one = await slidingOnSpans(model, reader, spans.slice(0, 1), 256, 64, 1000)
    expect(await slidingOnSpans(model, reader, spans, 256, 64, 8)).toEqual(one)
  })

  it('builds passkey prompts of the exact length with the needle at the depth', () => {
    for (const length of [128, 256, 512]) {
      for (const depth of [0, 0.5, 1]) {
        const p = passkeyPrompt(tok, length, depth, '40913')!
        expect(p.length).toBe(length - 8) // room for the answer inside `length`
        const text = tok.decode(p)
        expect(text.startsWith('Remember the secret number hidden in this text.')).toBe(true)
        expect(text.endsWith('The secret number is')).toBe(true)
        const at = text.indexOf(passkeyNeedle('40913'))
        expect(at).toBeGreaterThan(0)
        const before = text.slice(0, at).length / (text.length - passkeyNeedle('40913').length)
        if (depth === 0) expect(text.slice(0, at)).toBe('Remember the secret number hidden in this text.\n\n')
        if (depth === 1) expect(before).toBeGreaterThan(0.8)
        // the needle snaps to a filler sentence start: coarse in a short prompt
        if (depth === 0.5 && length === 512) expect(Math.abs(before - 0.5)).toBeLessThan(0.1)
      }
    }
    expect(passkeyPrompt(tok, 60, 0.5, '40913')).toBeNull() // too short for the question itself
  })
})
