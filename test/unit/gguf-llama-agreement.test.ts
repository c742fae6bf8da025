// The exported GGUF in node-llama-cpp (llama.cpp on the CPU, in the GGUF host child process)
// against the engine on the same text: next-token log-probabilities at every position agree
// within the tolerance of the weight type, the tokenizers agree, and greedy decoding fills the
// context to the position limit without llama.cpp ever passing it.
//
// Tolerances (max |log p_gguf - log p_engine| over every position and the whole vocabulary):
//   f16  <= 0.01   (measured about 0.003: f16 weights, llama.cpp's f16 GELU table)
//   q8_0 <= 0.15   (measured about 0.07; the log-probability of the actual next token within
//                   0.03 on average, measured 0.007)
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GgufHost } from '../../src-main/core/chat/gguf-client.ts'
import { exportGguf } from '../../src-main/core/export/gguf/export-gguf.ts'
import { loadTokenizer } from '../../src-main/core/tokenizer/index.ts'
import { EngineModel } from '../../src-main/engine/model.ts'
import { tempDir } from '../helpers/temp.ts'
import { corpusIds, corpusText, trainTinyModel } from '../helpers/trained-tiny.ts'

let dir: Awaited<ReturnType<typeof tempDir>>
let modelDir: string
let model: EngineModel
const hosts: GgufHost[] = []

beforeAll(async () => {
  dir = await tempDir('longctx-llama-')
  modelDir = await trainTinyModel(join(dir.path, 'trained'), { steps: 200 })
  model = await EngineModel.load(modelDir)
  for (const type of ['f16', 'q8_0'] as const)
    await exportGguf({ model, tokenizerDir: modelDir, out: join(dir.path, `tiny-${type}.gguf`), type })
}, 180_000)

afterAll(async () => {
  await Promise.all(hosts.map((h) => h.dispose()))
  model?.dispose()
  await dir?.cleanup()
})

async function host(type: 'f16' | 'q8_0'): Promise<GgufHost> {
  const h = await GgufHost.start({ path: join(dir.path, `tiny-${type}.gguf`), gpu: false })
  hosts.push(h)
  return h
}

function logSoftmax(a: ArrayLike<number>): Float64Array {
  let mx = -Infinity
  for (let i = 0; i < a.length; i++) mx = Math.max(mx, a[i]!)
  let s = 0
  for (let i = 0; i < a.length; i++) s += Math.exp(a[i]! - mx)
  const lse = Math.log(s) + mx
  return Float64Array.from(a, (x) => x - lse)
}

async function compare(type: 'f16' | 'q8_0') {
  const h = await host(type)
  expect(h.loaded.trainContextSize).toBe(128)
  const V = model.config.vocabSize
  // 127 tokens of held-out-ish text: as much as node-llama-cpp scores in a 128-token context
  const ids = Array.from((await corpusIds(60)).subarray(60_000, 60_000 + 127))
  const { logits } = await model.forward({ tokens: ids, B: 1, T: ids.length }, { logits: true })
  const rows = await h.logits(ids)
  let maxAll = 0
  let sumTarget = 0
  let top1 = 0
  for (let p = 0; p < ids.length; p++) {
    const a = logSoftmax(rows[p]!)
    const b = logSoftmax(logits!.subarray(p * V, (p + 1) * V))
    let am = 0
    let bm = 0
    for (let i = 0; i < V; i++) {
      maxAll = Math.max(maxAll, Math.abs(a[i]! - b[i]!))
      if (a[i]! > a[am]!) am = i
      if (b[i]! > b[bm]!) bm = i
    }
    if (am === bm) top1++
    if (p + 1 < ids.length) sumTarget += Math.abs(a[ids[p + 1]!]! - b[ids[p + 1]!]!)
  }
  const meanTarget = sumTarget / (ids.length - 1)
  // The numbers the closing note reports.
  console.log(`[gguf-agreement] ${type}: max |dlogp| ${maxAll.toFixed(4)}, mean |dlogp(next token)| ${meanTarget.toFixed(5)}, top-1 agree ${top1}/${ids.length}`)
  return { maxAll, meanTarget, top1, n: ids.length }
}

describe('GGUF in node-llama-cpp vs the engine', () => {
  it('f16: log-probabilities agree within 0.01 at every position', async () => {
    const r = await compare('f16')
    expect(r.maxAll).toBeLessThanOrEqual(0.01)
    expect(r.top1).toBe(r.n)
  })

  it('q8_0: log-probabilities agree within 0.15, the next token within 0.03 on average', async () => {
    const r = await compare('q8_0')
    expect(r.maxAll).toBeLessThanOrEqual(0.15)
    expect(r.meanTarget).toBeLessThanOrEqual(0.03)
    expect(r.top1).toBeGreaterThanOrEqual(r.n - 5)
  })

  it('llama.cpp tokenizes like the model tokenizer (GPT-2 pre-tokenizer)', async () => {
    const tok = await loadTokenizer(modelDir)
    const h = hosts[0] ?? (await host('f16'))
    for (const text of [
      'In the beginning God created the heaven and the earth.',
      "And God said, Let there be light: and there was light. It's 10:30 -- isn't it?\n\n  Indented  spaces\ttab",
      'Ünïcödé “quotes” — dashes… 日本語 🙂<|endoftext|>',
    ])
      expect(await h.tokenize(text), text).toEqual(Array.from(tok.encode(text)))
  })

  it('greedy decoding matches the engine and stops at the position limit', async () => {
    const tok = await loadTokenizer(modelDir)
    const h = hosts[0] ?? (await host('f16'))
    const prompt = Array.from(tok.encode('And God said, Let there be'))
    const engine: number[] = []
    for await (const id of model.generateTokens(prompt, { maxTokens: 1000, temperature: 0, stopAtEos: false })) engine.push(id)
    expect(prompt.length + engine.length).toBe(128)
    const got: number[] = []
    const run = h.generate(prompt, { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 1 }, 1000, (ids) => got.push(...ids), false)
    const r = await run.done
    expect(r.stopReason).toBe('context_full')
    expect(prompt.length + got.length).toBe(128)
    expect(h.alive).toBe(true)
    // f16 rounding may flip a near-tie late in a long greedy run; the start must be identical
    let same = 0
    while (same < got.length && got[same] === engine[same]) same++
    console.log(`[gguf-agreement] greedy: ${same}/${got.length} tokens identical to the engine's`)
    expect(same).toBeGreaterThanOrEqual(Math.min(20, got.length))
  })

  // The app's embedded demo model (resources/demo, made by scripts/make-demo-model.ts), when it is
  // there: a real pretrained model with its own 2048-token BPE. Measured: f16 0.002, q8_0 0.064.
  const DEMO = join(import.meta.dirname, '../../resources/demo')
  it.skipIf(!existsSync(join(DEMO, 'model.safetensors')))('the demo model: f16 within 0.01, q8_0 within 0.15', async () => {
    const demo = await EngineModel.load(DEMO)
    try {
      const tok = await loadTokenizer(DEMO)
      const ids = Array.from(tok.encode(corpusText(300).slice(-3000))).slice(0, demo.config.nPositions - 1)
      const V = demo.config.vocabSize
      const { logits } = await demo.forward({ tokens: ids, B: 1, T: ids.length }, { logits: true })
      for (const [type, tol] of [['f16', 0.01], ['q8_0', 0.15]] as const) {
        const out = join(dir.path, `demo-${type}.gguf`)
        await exportGguf({ model: demo, tokenizerDir: DEMO, out, type })
        const h = await GgufHost.start({ path: out, gpu: false })
        hosts.push(h)
        const rows = await h.logits(ids)
        let maxAll = 0
        for (let p = 0; p < ids.length; p++) {
          const a = logSoftmax(rows[p]!)
          const b = logSoftmax(logits!.subarray(p * V, (p + 1) * V))
          for (let i = 0; i < V; i++) maxAll = Math.max(maxAll, Math.abs(a[i]! - b[i]!))
        }
        console.log(`[gguf-agreement] demo ${type}: max |dlogp| ${maxAll.toFixed(4)} over ${ids.length} positions`)
        expect(maxAll).toBeLessThanOrEqual(tol)
        expect(await h.tokenize('In the beginning God created the heaven and the earth.')).toEqual(
          Array.from(tok.encode('In the beginning God created the heaven and the earth.')),
        )
      }
    } finally {
      demo.dispose()
    }
  })
})
