// The default plan (stages, sizes scaled to the model, capped by the data) and the plan schema's
// validation, and the learning-rate schedule.
import { describe, expect, it } from 'vitest'
import { runPlanSchema, type RunPlan } from '../../src-main/api/runs.ts'
import { demoPlan } from '../../src-main/core/runs/demo.ts'
import { buildDefaultPlan, stageContexts, type DatasetFacts } from '../../src-main/core/runs/plan.ts'
import { learningRateAt } from '../../src-main/core/runs/schedule.ts'

// A dataset described by its document lengths (all training), with `heldOut` windows per length.
function facts(lengths: number[], heldOutDocs: number[] = [20000, 20000]): DatasetFacts {
  return {
    id: 'abcdef0123456789',
    trainTokens: lengths.reduce((a, b) => a + b, 0),
    trainDocuments: lengths.length,
    longTokens: (n) => lengths.filter((l) => l >= n).reduce((a, b) => a + b, 0),
    longDocuments: (n) => lengths.filter((l) => l >= n).length,
    heldOutWindows: (n) => heldOutDocs.reduce((a, l) => a + Math.floor(l / n), 0),
  }
}

const big = facts(Array.from({ length: 200_000 }, (_, i) => (i % 3 === 0 ? 12_000 : 1500)))
const xl = { path: '/models/rugpt3xl', parameters: 1.3e9, contextLength: 2048 }

describe('default plan', () => {
  it('extends 2k -> 4k -> 8k for a 2k model: tiling, 60 % long, eval at 2k/4k/8k, passkey at 5 depths', () => {
    const plan = buildDefaultPlan(xl, big)
    expect(runPlanSchema.safeParse(plan).success).toBe(true)
    expect(plan.stages.map((s) => [s.name, s.context])).toEqual([
      ['4k', 4096],
      ['8k', 8192],
    ])
    expect(plan).toMatchObject({ baseContext: 2048, extendMode: 'tile', backend: 'auto', modelDir: xl.path, datasetId: big.id })
    expect(plan.eval.windows).toEqual([2048, 4096, 8192])
    expect(plan.eval.passkey).toMatchObject({ lengths: [2048, 4096, 8192], depths: [0, 0.25, 0.5, 0.75, 1] })
    for (const s of plan.stages) {
      expect(s.pLong).toBe(0.6)
      expect(s.packLong).toBe(false)
      expect(s.tokensPerStep % (s.microBatch * s.context)).toBe(0)
      // a 1.3B model: one row per forward, activation recompute, 512k tokens per step
      expect(s.microBatch).toBe(1)
      expect(s.recompute).toBe(true)
      expect(s.tokensPerStep).toBe(2 ** 19)
      expect(s.lr.peak).toBeLessThanOrEqual(1e-4)
      expect(s.lr.warmupSteps).toBeGreaterThan(0)
      expect(s.lr.warmupSteps).toBeLessThanOrEqual(s.steps)
      expect(s.evalEvery).toBeGreaterThan(0)
      expect(s.checkpointEvery).toBeGreaterThan(0)
      // about P / 10 tokens per stage
      expect(s.steps * s.tokensPerStep).toBeGreaterThan(1e8)
      expect(s.steps * s.tokensPerStep).toBeLessThan(2e8)
    }
    expect(plan.notes).toBeUndefined()
  })

  it('scales to the model: a small model gets more rows per forward, a higher rate, no recompute', () => {
    const small = buildDefaultPlan({ path: '/m/gpt2', parameters: 124e6, contextLength: 1024 }, big)
    expect(small.stages.map((s) => s.name)).toEqual(['2k', '4k'])
    expect(small.stages[0]).toMatchObject({ microBatch: 4, recompute: false })
    expect(small.stages[0]!.lr.peak).toBeGreaterThan(buildDefaultPlan(xl, big).stages[0]!.lr.peak)
    expect(small.stages[0]!.tokensPerStep).toBe(65536)
  })

  it('names stages by tokens below 1k (the demo: 256 -> 512 -> 1k), and ends at an odd target', () => {
    expect(stageContexts(256, 1024)).toEqual([512, 1024])
    expect(stageContexts(2048, 6144)).toEqual([4096, 6144])
    expect(stageContexts(2048, 4096)).toEqual([4096])
    const plan = buildDefaultPlan({ path: '/m/demo', parameters: 1.1e6, contextLength: 256 }, big)
    expect(plan.stages.map((s) => s.name)).toEqual(['512', '1k'])
    expect(buildDefaultPlan(xl, big, { targetContext: 6144 }).stages.map((s) => s.context)).toEqual([4096, 6144])
    expect(() => buildDefaultPlan(xl, big, { targetContext: 2048 })).toThrow(/must be longer than the model's context/)
  })

  it('never plans more tokens than the data holds, and says so', () => {
    const small = facts(Array.from({ length: 300 }, () => 9000)) // 2.7M tokens
    const plan = buildDefaultPlan(xl, small)
    for (const s of plan.stages) expect(s.steps * s.tokensPerStep).toBeLessThanOrEqual(small.trainTokens)
    expect(plan.notes?.join('\n')).toMatch(/Stage 4k: .* the training split holds 2\.7M; the stage is planned at 5 steps/)
  })

  it('packs long examples when no document is long enough, and says what that means', () => {
    const short = facts(Array.from({ length: 101_000 }, (_, i) => (i < 1000 ? 5000 : 1000)))
    const plan = buildDefaultPlan(xl, short)
    expect(plan.stages.map((s) => s.packLong)).toEqual([false, true])
    expect(plan.notes?.join('\n')).toMatch(/Stage 8k: no training document is 8192 tokens or longer/)
    expect(plan.notes?.join('\n')).toMatch(/Stage 4k: the long examples .* repeats/)
  })

  it('notes a window the held-out documents cannot measure', () => {
    const plan = buildDefaultPlan(xl, facts(Array.from({ length: 200_000 }, () => 12_000), [5000]))
    expect(plan.notes?.join('\n')).toMatch(/No held-out document is 8192 tokens or longer/)
  })

  it('the demo plan is short: 2 stages, 2k tokens per step, 1 passkey trial, CPU', () => {
    const plan = demoPlan({ path: '/r/demo', parameters: 1.1e6, contextLength: 256 }, big)
    expect(runPlanSchema.safeParse(plan).success).toBe(true)
    expect(plan.backend).toBe('cpu')
    expect(plan.stages.map((s) => [s.context, s.steps, s.tokensPerStep, s.microBatch])).toEqual([
      [512, 32, 2048, 2],
      [1024, 24, 2048, 1],
    ])
    expect(plan.eval.windows).toEqual([256, 512, 1024])
    expect(plan.eval.passkey?.trials).toBe(1)
  })
})

describe('plan schema', () => {
  const valid = buildDefaultPlan(xl, big)
  const issues = (p: unknown) => {
    const r = runPlanSchema.safeParse(p)
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
  }
  const withStage = (i: number, over: object): RunPlan => ({
    ...valid,
    stages: valid.stages.map((s, k) => (k === i ? { ...s, ...over } : s)),
  })

  it('accepts the default and rejects what cannot run, naming the field', () => {
    expect(issues(valid)).toEqual([])
    expect(issues(withStage(0, { tokensPerStep: 5000 }))).toEqual(['stages.0.tokensPerStep: must be a multiple of microBatch x context (4096)'])
    expect(issues(withStage(1, { lr: { peak: 1e-4, warmupSteps: 10_000, minRatio: 0.1 } }))).toEqual(['stages.1.lr.warmupSteps: cannot exceed the stage steps'])
    expect(issues(withStage(1, { context: 3072, tokensPerStep: 3072 * 170 }))).toEqual(['stages.1.context: must be at least 4096 (contexts only grow)'])
    expect(issues({ ...valid, schema: 2 })[0]).toMatch(/^schema: /)
    expect(issues({ ...valid, extra: 1 })[0]).toMatch(/Unrecognized key/)
    expect(issues(withStage(0, { pLong: 1.5 }))[0]).toMatch(/^stages\.0\.pLong: /)
  })
})

describe('learning-rate schedule', () => {
  const lr = { peak: 1e-3, warmupSteps: 10, minRatio: 0.1 }
  it('warms up linearly from peak/warmup, then decays by a half cosine to minRatio x peak', () => {
    expect(learningRateAt(lr, 100, 1)).toBeCloseTo(1e-4, 15)
    expect(learningRateAt(lr, 100, 5)).toBeCloseTo(5e-4, 15)
    expect(learningRateAt(lr, 100, 10)).toBeCloseTo(1e-3, 15)
    expect(learningRateAt(lr, 100, 11)).toBeCloseTo(1e-3, 15)
    expect(learningRateAt(lr, 100, 100)).toBeCloseTo(1e-4, 15)
    // halfway through the decay: the mean of peak and minimum
    expect(learningRateAt({ ...lr, warmupSteps: 0 }, 101, 51)).toBeCloseTo(5.5e-4, 15)
    for (let s = 11; s < 100; s++) expect(learningRateAt(lr, 100, s + 1)).toBeLessThan(learningRateAt(lr, 100, s))
  })
  it('handles degenerate stages', () => {
    expect(learningRateAt({ peak: 1e-3, warmupSteps: 0, minRatio: 0 }, 1, 1)).toBe(1e-3)
    expect(learningRateAt({ peak: 1e-3, warmupSteps: 4, minRatio: 0 }, 4, 4)).toBe(1e-3)
    expect(learningRateAt({ peak: 1e-3, warmupSteps: 0, minRatio: 0 }, 2, 2)).toBeCloseTo(0, 15)
  })
})
