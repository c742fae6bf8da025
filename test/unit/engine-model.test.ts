// Model behaviour through the addon: tiling, KV-cached generation, save/load, checkpoints, AdamW.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { EngineModel } from '../../src-main/engine/model.ts'
import { loadNative } from '../../src-main/engine/native.ts'
import { tempDir } from '../helpers/temp.ts'
import { argmax, bytesEqual, lmBatch, maxAbsDiff, randomIds, TINY, tinyModel } from '../helpers/engine.ts'

let tmp: Awaited<ReturnType<typeof tempDir>>
beforeAll(async () => {
  tmp = await tempDir('longctx-engine-')
})
afterAll(() => tmp?.cleanup())

describe('engine: basics', () => {
  it('reports backends, layout and config', async () => {
    const native = loadNative()
    expect(native.backendsAvailable()).toContain('cpu')
    const layout = native.paramLayout(TINY)
    expect(layout.tensors.map((t) => t.name)).toEqual([
      'wte', 'wpe', 'ln1w', 'ln1b', 'qkvw', 'qkvb', 'attprojw', 'attprojb',
      'ln2w', 'ln2b', 'fcw', 'fcb', 'fcprojw', 'fcprojb', 'lnfw', 'lnfb',
    ])
    const C = TINY.nEmbd
    expect(layout.total).toBe(TINY.vocabSize * C + TINY.nPositions * C + TINY.nLayer * (12 * C * C + 13 * C) + 2 * C)
    const m = await tinyModel(1, { attention: ['dense', 'window:8'] })
    try {
      expect(m.paramCount).toBe(layout.total)
      expect(m.backend).toBe('cpu')
      expect(m.config).toMatchObject({ ...TINY, arch: 'gpt2', nInner: 4 * C, layerNormEps: 1e-5, attention: ['dense', 'window:8'] })
      await m.setAttention(1, 'dense')
      expect(m.config.attention).toEqual(['dense', 'dense'])
    } finally {
      m.dispose()
    }
  })

  it('nvmlQuery reports the GPUs, or why there are none, without throwing', () => {
    const r = loadNative().nvmlQuery()
    if (r.ok) {
      expect(r.driver).toMatch(/\d/)
      for (const g of r.gpus) {
        expect(g.name.length).toBeGreaterThan(0)
        expect(g.totalBytes).toBeGreaterThan(0)
        expect(g.usedBytes).toBeLessThanOrEqual(g.totalBytes)
      }
    } else {
      expect(r.reason).toMatch(/libnvidia-ml|nvml/i)
    }
  })

  it('creation is deterministic for a seed', async () => {
    const [a, b, c] = await Promise.all([tinyModel(11), tinyModel(11), tinyModel(12)])
    try {
      const [pa, pb, pc] = await Promise.all([a.getParams(), b.getParams(), c.getParams()])
      expect(bytesEqual(pa, pb)).toBe(true)
      expect(bytesEqual(pa, pc)).toBe(false)
    } finally {
      a.dispose()
      b.dispose()
      c.dispose()
    }
  })
})

describe('engine: context extension', () => {
  it('tile keeps logits bit-identical for sequences <= n_old', async () => {
    const m = await tinyModel(21)
    try {
      const nOld = m.config.nPositions
      const lengths = [1, 5, nOld - 1, nOld]
      const before = new Map<number, Float32Array>()
      for (const T of lengths) before.set(T, (await m.forward({ tokens: randomIds(2 * T, 96, T), B: 2, T }, { logits: true })).logits!)
      // Packed documents too: positions restart at each document start.
      const segs = Int32Array.from({ length: nOld }, (_, t) => (t < 10 ? 0 : 1))
      const packed = { tokens: randomIds(nOld, 96, 99), segments: segs, B: 1, T: nOld }
      const packedBefore = (await m.forward(packed, { logits: true })).logits!

      await m.extendPositions(4 * nOld, 'tile')
      expect(m.config.nPositions).toBe(4 * nOld)
      for (const T of lengths) {
        const after = (await m.forward({ tokens: randomIds(2 * T, 96, T), B: 2, T }, { logits: true })).logits!
        expect(bytesEqual(after, before.get(T)!), `T=${T}`).toBe(true)
      }
      expect(bytesEqual((await m.forward(packed, { logits: true })).logits!, packedBefore)).toBe(true)
      // Rows beyond n_old repeat the table: row p = row p mod n_old.
      const p = await m.getParams()
      const { wpe } = Object.fromEntries(loadNative().paramLayout(m.config).tensors.map((t) => [t.name, t]))
      const C = m.config.nEmbd
      const row = (r: number) => p.subarray(wpe!.offset + r * C, wpe!.offset + (r + 1) * C)
      expect(bytesEqual(row(nOld + 3), row(3))).toBe(true)
      expect(bytesEqual(row(3 * nOld + 7), row(7))).toBe(true)
      // And the longer context is usable.
      const long = await m.forward(lmBatch(randomIds(4 * nOld, 96, 5), 1, 4 * nOld))
      expect(Number.isFinite(long.loss)).toBe(true)
    } finally {
      m.dispose()
    }
  })

  it('interpolate and random grow the table too', async () => {
    for (const mode of ['interpolate', 'random'] as const) {
      const m = await tinyModel(22)
      try {
        await m.extendPositions(64, mode, 5)
        expect(m.config.nPositions).toBe(64)
        expect(m.paramCount).toBe(loadNative().paramLayout(m.config).total)
      } finally {
        m.dispose()
      }
    }
  })
})

describe('engine: generation', () => {
  it('KV-cached generation equals full recompute (greedy tokens and logits)', async () => {
    const m = await tinyModel(31, { attention: ['dense', 'window:6'] })
    try {
      const V = m.config.vocabSize
      const prompt = Array.from(randomIds(7, V, 3))
      const steps = 12

      // Reference: recompute the whole sequence for every new token.
      const seq = [...prompt]
      const refLogits: Float32Array[] = []
      for (let s = 0; s < steps; s++) {
        const T = seq.length
        const logits = (await m.forward({ tokens: seq, B: 1, T }, { logits: true })).logits!
        const last = logits.slice((T - 1) * V, T * V)
        refLogits.push(last)
        seq.push(argmax(last))
      }
      const refTokens = seq.slice(prompt.length)

      // Greedy next() through the cache.
      const g = await m.generator(prompt.length + steps)
      await g.feed(prompt)
      const got: number[] = []
      for (let s = 0; s < steps; s++) got.push(await g.next({ temperature: 0 }))
      expect(got).toEqual(refTokens)
      expect(g.length).toBe(prompt.length + steps)

      // Logits of every step through feed(), one token at a time.
      await g.reset()
      let logits = (await g.feed(prompt, true))!
      for (let s = 0; s < steps; s++) {
        expect(maxAbsDiff(logits, refLogits[s]!), `step ${s}`).toBeLessThan(1e-4)
        logits = (await g.feed([refTokens[s]!], true))!
      }
      g.dispose()

      // The streaming helper gives the same ids.
      const streamed: number[] = []
      for await (const id of m.generateTokens(prompt, { maxTokens: steps, temperature: 0 })) streamed.push(id)
      expect(streamed).toEqual(refTokens)
    } finally {
      m.dispose()
    }
  })

  it('sampling is deterministic for a seed', async () => {
    const m = await tinyModel(32)
    try {
      const run = async (seed: number) => {
        const out: number[] = []
        for await (const id of m.generateTokens([1, 2, 3], { maxTokens: 10, temperature: 1, topK: 20, topP: 0.9, seed })) out.push(id)
        return out
      }
      expect(await run(5)).toEqual(await run(5))
    } finally {
      m.dispose()
    }
  })
})

describe('engine: persistence and training', () => {
  it('save -> load round trip is exact', async () => {
    const m = await tinyModel(41)
    const dir = join(tmp.path, 'roundtrip')
    try {
      await m.save(dir)
      const loaded = await EngineModel.load(dir)
      try {
        expect(loaded.config).toEqual(m.config)
        expect(bytesEqual(await loaded.getParams(), await m.getParams())).toBe(true)
      } finally {
        loaded.dispose()
      }
      // Sharded too.
      const sharded = join(tmp.path, 'sharded')
      await m.save(sharded, { maxShardBytes: 64 * 1024 })
      const again = await EngineModel.load(sharded)
      try {
        expect(bytesEqual(await again.getParams(), await m.getParams())).toBe(true)
      } finally {
        again.dispose()
      }
    } finally {
      m.dispose()
    }
  })

  it('a few AdamW steps lower the loss on a fixed batch', async () => {
    const m = await tinyModel(51)
    try {
      await m.trainInit({ weightDecay: 0.0, gradClip: 1 })
      const batch = lmBatch(randomIds(4 * 24, 96, 17), 4, 24)
      const first = (await m.forward(batch)).loss!
      for (let i = 0; i < 10; i++) {
        await m.zeroGrad()
        await m.forwardBackward(batch)
        const norm = await m.optimizerStep(3e-3)
        expect(norm).toBeGreaterThan(0)
      }
      const last = (await m.forward(batch)).loss!
      expect(last).toBeLessThan(first - 0.1)
      expect(m.optimizerSteps).toBe(10)
    } finally {
      m.dispose()
    }
  })

  it('gradient accumulation: two half-scaled micro-batches equal one full batch', async () => {
    const [a, b] = await Promise.all([tinyModel(52), tinyModel(52)])
    try {
      await a.trainInit({})
      await b.trainInit({})
      const full = lmBatch(randomIds(2 * 16, 96, 23), 2, 16)
      const half = (r: number) => ({ tokens: full.tokens.subarray(r * 16, r * 16 + 16), targets: full.targets.subarray(r * 16, r * 16 + 16), B: 1, T: 16 })
      await a.zeroGrad()
      await a.forwardBackward(full)
      await b.zeroGrad()
      await b.forwardBackward(half(0), 0.5)
      await b.forwardBackward(half(1), 0.5)
      expect(maxAbsDiff(await a.getGrads(), await b.getGrads())).toBeLessThan(1e-5)
    } finally {
      a.dispose()
      b.dispose()
    }
  })

  it("gradDtype 'bf16' is a CUDA saving: the CPU keeps fp32 gradients (same bits); other values are refused", async () => {
    const [a, b] = await Promise.all([tinyModel(53), tinyModel(53)])
    try {
      await a.trainInit({ gradDtype: 'fp32' })
      await b.trainInit({ gradDtype: 'bf16' })
      const batch = lmBatch(randomIds(2 * 16, 96, 29), 2, 16)
      for (const m of [a, b]) {
        await m.zeroGrad()
        await m.forwardBackward(batch)
      }
      expect(bytesEqual(await a.getGrads(), await b.getGrads())).toBe(true)
      await expect(b.trainInit({ gradDtype: 'fp16' as 'bf16' })).rejects.toMatchObject({
        engineCode: 'LCX_ERR_ARG',
        message: expect.stringMatching(/gradDtype must be 'fp32' or 'bf16', got 'fp16'/),
      })
    } finally {
      a.dispose()
      b.dispose()
    }
  })

  it('checkpoint round trip: training after reload is bit-identical', async () => {
    const batchA = lmBatch(randomIds(2 * 20, 96, 61), 2, 20)
    const batchB = lmBatch(randomIds(2 * 20, 96, 62), 2, 20)
    const step = async (m: EngineModel, batch: typeof batchA) => {
      await m.zeroGrad()
      await m.forwardBackward(batch)
      await m.optimizerStep(1e-3)
    }
    const ckpt = join(tmp.path, 'ckpt.safetensors')
    const a = await tinyModel(63)
    const b = await tinyModel(64) // different init: everything must come from the checkpoint
    try {
      await a.trainInit({})
      await step(a, batchA)
      await step(a, batchB)
      await a.saveCheckpoint(ckpt)
      await step(a, batchA)
      await step(a, batchB)

      await b.trainInit({})
      await b.loadCheckpoint(ckpt)
      expect(b.optimizerSteps).toBe(2)
      await step(b, batchA)
      await step(b, batchB)
      expect(b.optimizerSteps).toBe(4)
      expect(bytesEqual(await a.getParams(), await b.getParams())).toBe(true)
    } finally {
      a.dispose()
      b.dispose()
    }
  })
})
