// The memory estimate against the CPU engine's own accounting after real training steps (the
// target is within 15 %), the verdicts, `fit`, and the CUDA formula's orders of magnitude for
// the DESIGN's reference model (the lead checks it against the device).
import { describe, expect, it } from 'vitest'
import type { RunPlan } from '../../src-main/api/runs.ts'
import {
  estimatePlanMemory,
  fitPlan,
  MEMORY_CONSTANTS,
  NothingFitsError,
  parameterCount,
  stageGradDtype,
  stageMemory,
  type ModelShape,
} from '../../src-main/core/runs/memory.ts'
import { buildDefaultPlan } from '../../src-main/core/runs/plan.ts'
import { EngineModel } from '../../src-main/engine/model.ts'
import { loadNative } from '../../src-main/engine/native.ts'
import { trainConfig } from '../../src-main/worker/train.ts'
import { randomIds } from '../helpers/engine.ts'

const GiB = 2 ** 30

// Trains `steps` real steps at (microBatch x context) after extending the positions, evaluates
// once (forward with NLL, as a run does between steps), and returns the engine's peak bytes.
async function measuredPeak(shape: ModelShape & { nPositions: number }, context: number, microBatch: number): Promise<{ peak: number; params: number }> {
  loadNative().setNumThreads(1)
  const model = await EngineModel.create({ ...shape, nPositions: shape.nPositions }, 3)
  try {
    if (context > shape.nPositions) await model.extendPositions(context, 'tile')
    await model.trainInit({})
    await model.resetPeakMemory()
    const N = microBatch * context
    for (let s = 0; s < 2; s++) {
      const tokens = randomIds(N, shape.vocabSize, s + 1)
      const targets = Int32Array.from(tokens, (_, i) => tokens[(i + 1) % N]!)
      await model.zeroGrad()
      await model.forwardBackward({ tokens, targets, B: microBatch, T: context }, 0.5)
      await model.optimizerStep(1e-4)
    }
    const tokens = randomIds(N, shape.vocabSize, 9)
    await model.forward({ tokens, targets: tokens, B: microBatch, T: context }, { nll: true })
    return { peak: (await model.memoryStats()).peakAllocatedBytes, params: model.paramCount }
  } finally {
    model.dispose()
  }
}

const cases: Array<{ name: string; shape: ModelShape & { nPositions: number }; context: number; microBatch: number }> = [
  { name: 'fixture-sized, 128 -> 512', shape: { vocabSize: 512, nEmbd: 64, nLayer: 2, nHead: 4, nInner: 256, nPositions: 128 }, context: 512, microBatch: 2 },
  { name: 'demo-sized, 256 -> 1024', shape: { vocabSize: 2048, nEmbd: 128, nLayer: 4, nHead: 4, nInner: 512, nPositions: 256 }, context: 1024, microBatch: 1 },
  { name: 'wide vocabulary, many rows', shape: { vocabSize: 8192, nEmbd: 96, nLayer: 3, nHead: 3, nInner: 384, nPositions: 128 }, context: 256, microBatch: 6 },
]

describe('memory estimate (CPU backend)', () => {
  for (const c of cases) {
    it(`is within 15 % of the engine's peak after real steps: ${c.name}`, async () => {
      const { peak, params } = await measuredPeak(c.shape, c.context, c.microBatch)
      expect(parameterCount(c.shape, c.context)).toBe(params)
      const est = stageMemory(c.shape, { context: c.context, microBatch: c.microBatch, recompute: false, masterDtype: 'fp32', gradDtype: 'fp32', passkey: false }, 'cpu')
      const error = Math.abs(est.totalBytes - peak) / peak
      // Printed for the report: the formula follows the CPU backend's allocations, so it is exact.
      console.log(`${c.name}: estimate ${est.totalBytes} B, measured peak ${peak} B, error ${(error * 100).toFixed(2)} %`)
      expect(error).toBeLessThan(0.15)
      expect(est.weightsBytes).toBe(4 * params)
      expect(est.optimizerBytes).toBe(8 * params)
      expect(est.gradientsBytes).toBe(4 * params)
    })
  }
})

const xlShape: ModelShape = { vocabSize: 50257, nEmbd: 2048, nLayer: 24, nHead: 16, nInner: 8192 }
const xlFacts = {
  id: 'abcdef0123456789',
  trainTokens: 1e10,
  trainDocuments: 1e6,
  longTokens: () => 1e10,
  longDocuments: () => 1e5,
  heldOutWindows: () => 100,
}
const xlPlan = (): RunPlan => buildDefaultPlan({ path: '/m/xl', parameters: 1.3e9, contextLength: 2048 }, xlFacts)

describe('memory estimate (CUDA formula)', () => {
  it('has the expected shape for a 1.3B model at 8k', () => {
    const P = parameterCount(xlShape, 8192)
    expect(P / 1e9).toBeGreaterThan(1.3)
    expect(P / 1e9).toBeLessThan(1.35)
    const full = stageMemory(xlShape, { context: 8192, microBatch: 1, recompute: false, masterDtype: 'fp32', gradDtype: 'fp32', passkey: false }, 'cuda')
    const rc = stageMemory(xlShape, { context: 8192, microBatch: 1, recompute: true, masterDtype: 'fp32', gradDtype: 'fp32', passkey: false }, 'cuda')
    const bf16 = stageMemory(xlShape, { context: 8192, microBatch: 1, recompute: true, masterDtype: 'bf16', gradDtype: 'fp32', passkey: false }, 'cuda')
    // fp32 master + grads + Adam: 16 bytes per parameter, plus bf16 copies of wte and one layer
    expect(full.weightsBytes + full.gradientsBytes + full.optimizerBytes).toBeGreaterThan(16 * P)
    expect((full.weightsBytes - 4 * P) / GiB).toBeLessThan(0.5)
    // recompute keeps one layer's activations instead of 24
    expect(full.activationsBytes / GiB).toBeGreaterThan(12)
    expect(rc.activationsBytes / GiB).toBeLessThan(4)
    expect(bf16.weightsBytes).toBe(2 * P)
    console.log(
      `1.3B at 8k on CUDA: ${(full.totalBytes / GiB).toFixed(1)} GiB without recompute, ${(rc.totalBytes / GiB).toFixed(1)} GiB with, ` +
        `${(bf16.totalBytes / GiB).toFixed(1)} GiB with bf16 master weights`,
    )
  })

  it('gives verdicts against the free memory: fits, tight above 85 %, does-not-fit', () => {
    const plan = xlPlan()
    const total = stageMemory(xlShape, { context: 8192, microBatch: 1, recompute: true, masterDtype: 'fp32', gradDtype: 'fp32', passkey: true }, 'cuda').totalBytes
    const at = (free: number) => estimatePlanMemory(plan, xlShape, { backend: 'cuda', name: 'GPU', freeBytes: free + MEMORY_CONSTANTS.CUDA_CONTEXT_BYTES }).stages[1]!
    expect(at(total * 2).verdict).toBe('fits')
    expect(at(total / 0.9).verdict).toBe('tight')
    expect(at(total * 0.99).verdict).toBe('does-not-fit')
    const s = at(total * 2)
    expect(s.totalBytes).toBe(s.weightsBytes + s.optimizerBytes + s.gradientsBytes + s.activationsBytes + s.workspaceBytes)
    expect(s.availableBytes).toBe(total * 2)
  })
})

describe('fit', () => {
  it('lowers the micro-batch (same tokens per step) before turning recompute on, and the result fits', () => {
    const plan = xlPlan()
    plan.stages = plan.stages.map((s) => ({ ...s, microBatch: 8, recompute: false }))
    const need = (mb: number, recompute: boolean, ctx: number) => {
      const tokensPerStep = plan.stages.find((s) => s.context === ctx)!.tokensPerStep
      const gradDtype = stageGradDtype({ tokensPerStep, microBatch: mb, context: ctx })
      return stageMemory(xlShape, { context: ctx, microBatch: mb, recompute, masterDtype: 'fp32', gradDtype, passkey: true }, 'cuda').totalBytes
    }
    // A 40 GB GPU: at 4k micro-batch 1 fits without recompute, at 8k it does not.
    const device = { backend: 'cuda' as const, name: 'GPU', freeBytes: 40e9 }
    const usable = 40e9 - MEMORY_CONSTANTS.CUDA_CONTEXT_BYTES
    const fitted = fitPlan(plan, xlShape, device)
    for (const [i, s] of fitted.stages.entries()) {
      expect(s.tokensPerStep).toBe(plan.stages[i]!.tokensPerStep)
      expect(s.tokensPerStep % (s.microBatch * s.context)).toBe(0)
      expect(need(s.microBatch, s.recompute, s.context)).toBeLessThanOrEqual(0.85 * usable)
      // the preference: no larger micro-batch fits with the same recompute setting, and recompute
      // is on only when no micro-batch fits without it
      if (s.microBatch < 8) expect(need(s.microBatch * 2, s.recompute, s.context)).toBeGreaterThan(0.85 * usable)
      if (s.recompute) expect(need(1, false, s.context)).toBeGreaterThan(0.85 * usable)
    }
    expect(fitted.stages.map((s) => s.recompute)).toEqual([false, true])
    expect(fitted.optimizer.masterDtype).toBe('fp32')
    expect(fitted.notes?.join('\n')).toMatch(/Stage 4k: micro-batch 8 -> \d+ to fit GPU \(tokens per step unchanged: \d+ accumulated micro-batches\)/)
    expect(fitted.notes?.join('\n')).toMatch(/Stage 8k: micro-batch 8 -> \d+, activation recompute on/)
    expect(estimatePlanMemory(fitted, xlShape, device).stages.every((s) => s.verdict === 'fits')).toBe(true)
    // fitting a fitted plan changes nothing
    expect(fitPlan(fitted, xlShape, device).stages).toEqual(fitted.stages)
  })

  it('uses bf16 master weights as the last resort, and explains when nothing fits', () => {
    const plan = xlPlan()
    const bf16 = stageMemory(xlShape, { context: 8192, microBatch: 1, recompute: true, masterDtype: 'bf16', gradDtype: 'fp32', passkey: true }, 'cuda').totalBytes
    const fitted = fitPlan(plan, xlShape, { backend: 'cuda', name: '24 GB GPU', freeBytes: bf16 / 0.8 + MEMORY_CONSTANTS.CUDA_CONTEXT_BYTES })
    expect(fitted.optimizer.masterDtype).toBe('bf16')
    expect(fitted.notes?.join('\n')).toMatch(/Master weights in bf16/)
    expect(() => fitPlan(plan, xlShape, { backend: 'cuda', name: '8 GB GPU', freeBytes: 8 * GiB })).toThrow(NothingFitsError)
    expect(() => fitPlan(plan, xlShape, { backend: 'cuda', name: '8 GB GPU', freeBytes: 8 * GiB })).toThrow(
      /Stage 8k needs .* GiB even with micro-batch 1 and activation recompute \(weights .*\), but 8 GB GPU has .* free/,
    )
  })
})

describe('bf16 gradients of the layer matrices', () => {
  // qkv, attention projection, fc and fc projection of the 24 layers: 1.21e9 parameters
  const matrices = 24 * (4 * 2048 * 2048 + 2 * 2048 * 8192)
  const at2k = { context: 2048, microBatch: 1, recompute: true, masterDtype: 'fp32', passkey: false } as const

  it('take 2 bytes per matrix parameter off the CUDA estimate, nothing off the CPU one', () => {
    const f32 = stageMemory(xlShape, { ...at2k, gradDtype: 'fp32' }, 'cuda')
    const b16 = stageMemory(xlShape, { ...at2k, gradDtype: 'bf16' }, 'cuda')
    expect(f32.gradientsBytes).toBe(4 * parameterCount(xlShape, 2048))
    expect(f32.gradientsBytes - b16.gradientsBytes).toBe(2 * matrices)
    expect(f32.totalBytes - b16.totalBytes).toBe(2 * matrices)
    expect((2 * matrices) / GiB).toBeCloseTo(2.25, 2)
    for (const master of ['fp32', 'bf16'] as const) {
      const lean = (gradDtype: 'fp32' | 'bf16') => stageMemory(xlShape, { ...at2k, masterDtype: master, gradDtype }, 'cuda').totalBytes
      expect(lean('fp32') - lean('bf16')).toBe(2 * matrices)
    }
    // the CPU backend keeps fp32 gradients whatever it is asked
    const cpu = stageMemory(xlShape, { ...at2k, gradDtype: 'bf16' }, 'cpu')
    expect(cpu.gradientsBytes).toBe(4 * parameterCount(xlShape, 2048))
    expect(cpu.totalBytes).toBe(stageMemory(xlShape, { ...at2k, gradDtype: 'fp32' }, 'cpu').totalBytes)
  })

  it('are what a stage of one micro-batch per step gets, in the estimate and from the worker', () => {
    expect(stageGradDtype({ tokensPerStep: 8192, microBatch: 1, context: 8192 })).toBe('bf16')
    expect(stageGradDtype({ tokensPerStep: 4 * 2048, microBatch: 4, context: 2048 })).toBe('bf16')
    expect(stageGradDtype({ tokensPerStep: 2 * 8192, microBatch: 1, context: 8192 })).toBe('fp32')
    const plan = xlPlan()
    plan.stages = [
      { ...plan.stages[0]!, tokensPerStep: plan.stages[0]!.context, microBatch: 1 }, // one micro-batch
      { ...plan.stages[1]!, tokensPerStep: 4 * plan.stages[1]!.context, microBatch: 1 }, // four accumulated
    ]
    const device = { backend: 'cuda' as const, name: 'GPU', freeBytes: 80 * GiB }
    const est = estimatePlanMemory(plan, xlShape, device).stages
    const passkey = plan.eval.passkey !== null
    plan.stages.forEach((s, k) => {
      const input = { context: s.context, microBatch: 1, recompute: s.recompute, masterDtype: 'fp32', passkey } as const
      const [want, other] = k === 0 ? (['bf16', 'fp32'] as const) : (['fp32', 'bf16'] as const)
      expect(est[k]!.gradientsBytes).toBe(stageMemory(xlShape, { ...input, gradDtype: want }, 'cuda').gradientsBytes)
      expect(est[k]!.gradientsBytes).not.toBe(stageMemory(xlShape, { ...input, gradDtype: other }, 'cuda').gradientsBytes)
    })
    // the worker initialises each stage's training with the same choice
    expect(plan.stages.map((_, k) => trainConfig(plan, k).gradDtype)).toEqual(['bf16', 'fp32'])
  })

  it('let fit keep a whole step in one micro-batch where its fp32 gradients would not fit', () => {
    const plan = xlPlan()
    plan.stages = plan.stages.map((s) => ({ ...s, tokensPerStep: 2 * s.context, microBatch: 2, recompute: true }))
    const last = plan.stages[plan.stages.length - 1]!
    const input = { context: last.context, microBatch: 2, recompute: true, masterDtype: 'fp32', passkey: plan.eval.passkey !== null } as const
    const withBf16 = stageMemory(xlShape, { ...input, gradDtype: 'bf16' }, 'cuda').totalBytes
    const withFp32 = stageMemory(xlShape, { ...input, gradDtype: 'fp32' }, 'cuda').totalBytes
    // free memory between the two: micro-batch 2 (no accumulation, bf16 gradients) fits, and
    // would not with fp32 gradients
    const usable = (withBf16 + withFp32) / 2 / 0.85
    expect(withFp32).toBeGreaterThan(0.85 * usable)
    const free = usable + MEMORY_CONSTANTS.CUDA_CONTEXT_BYTES
    const fitted = fitPlan(plan, xlShape, { backend: 'cuda', name: 'GPU', freeBytes: free })
    expect(fitted.stages[fitted.stages.length - 1]!.microBatch).toBe(2)
    expect(fitted.optimizer.masterDtype).toBe('fp32')
  })
})
