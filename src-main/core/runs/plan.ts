// The default plan of a context extension, from the model's shape and what the dataset holds.
//
// Stages: base -> 2x -> 4x (up to the target; a target that is not base x 2^k ends with one
// stage at the target). Every stage is a fine-tune at its context with its own warmup + cosine
// schedule, 60 % long examples, position rows extended by tiling.
//
// Sizes scale with the model (parameters P):
// - tokens per step: about P / 2000 rounded to a power of two (65k for 124M, 512k for 1.3B),
//   at least one micro-batch, at most 512k;
// - tokens per stage: about P / 10 (12M for 124M, 130M for 1.3B), at least 64 steps' worth of
//   data for tiny models, and never more than the training split holds: a second pass over the
//   same text teaches the positions nothing new and over-fits small data, so the plan stops at
//   one epoch and says so in its notes;
// - peak learning rate: lower for bigger models (continued training, not pretraining);
// - micro-batch: about 8k tokens per forward for small models, 1 row for >= 1B; recompute on
//   for >= 350M (the activations of a long context dominate there). `fit` adapts both to the
//   selected device.
import type { RunPlan, StagePlan } from '../../api/runs.ts'
import { PLAN_SCHEMA_VERSION } from '../../api/runs.ts'

export interface ModelFacts {
  path: string
  parameters: number
  contextLength: number // n_positions
}

export interface DatasetFacts {
  id: string
  trainTokens: number
  trainDocuments: number
  // tokens / documents of the training split in documents at least n tokens long
  longTokens(n: number): number
  longDocuments(n: number): number
  heldOutWindows(n: number): number
}

export interface DefaultPlanOptions {
  targetContext?: number
  name?: string
  seed?: number
}

export const DEFAULT_P_LONG = 0.6
const MAX_TOKENS_PER_STEP = 1 << 19

// "4k" for multiples of 1024, else the number: stage names read like the DESIGN's table.
export function contextLabel(n: number): string {
  return n % 1024 === 0 ? `${n / 1024}k` : String(n)
}

export function stageContexts(base: number, target: number): number[] {
  const out: number[] = []
  for (let c = base * 2; c < target; c *= 2) out.push(c)
  out.push(target)
  return out
}

function pow2Round(x: number): number {
  return 2 ** Math.round(Math.log2(Math.max(1, x)))
}

export function peakLearningRate(parameters: number): number {
  if (parameters < 20e6) return 1e-3
  if (parameters < 200e6) return 2e-4
  if (parameters < 1e9) return 1e-4
  return 5e-5
}

export function buildDefaultPlan(model: ModelFacts, data: DatasetFacts, opts: DefaultPlanOptions = {}): RunPlan {
  const base = model.contextLength
  const target = opts.targetContext ?? base * 4
  if (target <= base) throw new RangeError(`the target context (${target}) must be longer than the model's context (${base})`)
  const P = model.parameters
  const notes: string[] = []
  const contexts = stageContexts(base, target)
  if (contexts.length > 8) throw new RangeError(`a target of ${target} from ${base} needs ${contexts.length} doubling stages; at most 8 are allowed`)

  const microTokens = P >= 1e9 ? 1 : P >= 350e6 ? 4096 : 8192
  const stepTokensWanted = Math.min(MAX_TOKENS_PER_STEP, pow2Round(P / 2000))
  const stageTokensWanted = Math.max(P / 10, 64 * stepTokensWanted)

  const stages: StagePlan[] = contexts.map((context) => {
    const microBatch = Math.max(1, Math.floor(microTokens / context))
    const rowTokens = microBatch * context
    const tokensPerStep = Math.max(1, Math.round(stepTokensWanted / rowTokens)) * rowTokens
    let steps = Math.max(1, Math.round(stageTokensWanted / tokensPerStep))
    const label = contextLabel(context)
    // One pass over the training split at most (see the top of the file).
    const epochSteps = Math.floor(data.trainTokens / tokensPerStep)
    if (steps > epochSteps) {
      const wanted = steps
      steps = Math.max(1, epochSteps)
      notes.push(
        `Stage ${label}: ${fmt(wanted * tokensPerStep)} tokens would be a good amount for a model of this size, but the ` +
          `training split holds ${fmt(data.trainTokens)}; the stage is planned at ${steps} step${steps === 1 ? '' : 's'} ` +
          `(${fmt(steps * tokensPerStep)} tokens, one pass). More text would help.`,
      )
    }
    const longDocs = data.longDocuments(context)
    const packLong = longDocs === 0
    if (packLong) {
      notes.push(
        `Stage ${label}: no training document is ${context} tokens or longer, so long examples pack several documents ` +
          `into one row: that teaches the new positions but not how to use a long context. Add longer documents if you can.`,
      )
    } else {
      const longNeeded = steps * tokensPerStep * DEFAULT_P_LONG
      const longHave = data.longTokens(context)
      if (longNeeded > longHave) {
        notes.push(
          `Stage ${label}: the long examples (${fmt(longNeeded)} tokens) come from only ${longDocs} document${longDocs === 1 ? '' : 's'} ` +
            `of ${context}+ tokens (${fmt(longHave)} tokens), so their text repeats about ${(longNeeded / longHave).toFixed(1)} times.`,
        )
      }
    }
    const warmupSteps = steps >= 10 ? Math.min(100, Math.round(steps / 10)) : 0
    return {
      name: label,
      context,
      steps,
      tokensPerStep,
      microBatch,
      lr: { peak: peakLearningRate(P), warmupSteps, minRatio: 0.1 },
      pLong: DEFAULT_P_LONG,
      packLong,
      recompute: P >= 350e6,
      evalEvery: steps >= 8 ? Math.ceil(steps / 4) : 0,
      checkpointEvery: steps >= 10 ? Math.ceil(steps / 5) : 0,
    }
  })

  // Perplexity at the base context and at every stage's context (base, 2x, 4x for the default).
  const windows = [base, ...contexts]
  for (const w of windows) {
    if (data.heldOutWindows(w) === 0)
      notes.push(`No held-out document is ${w} tokens or longer, so perplexity at ${contextLabel(w)} cannot be measured.`)
  }
  return {
    schema: PLAN_SCHEMA_VERSION,
    name: opts.name ?? `${contextLabel(base)} -> ${contextLabel(target)}`,
    modelDir: model.path,
    datasetId: data.id,
    backend: 'auto',
    baseContext: base,
    extendMode: 'tile',
    seed: opts.seed ?? 1,
    stages,
    optimizer: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1, masterDtype: 'fp32' },
    eval: {
      windows,
      maxWindowsPerLength: P >= 1e9 ? 16 : 32,
      slidingStride: Math.max(1, Math.floor(base / 2)),
      passkey: { lengths: [...windows], depths: [0, 0.25, 0.5, 0.75, 1], trials: P >= 1e9 ? 2 : 4 },
    },
    keepCheckpoints: 2,
    ...(notes.length ? { notes } : {}),
  }
}

function fmt(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}k`
  return String(Math.round(n))
}

export function totalSteps(plan: RunPlan): number {
  return plan.stages.reduce((a, s) => a + s.steps, 0)
}

export function targetContext(plan: RunPlan): number {
  return plan.stages[plan.stages.length - 1]!.context
}
