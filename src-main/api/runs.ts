// Staged runs in the API: the plan file's schema (also what `longctx train plan.json` reads),
// the memory estimate, run summaries, metrics and evaluations.
import { z } from 'zod'
import type { ModelSourceArg } from './export.ts'

// ---- the plan (a versioned JSON file) ------------------------------------------------------

export const PLAN_SCHEMA_VERSION = 1

const positiveInt = z.number().int().positive()

export const learningRateSchema = z
  .object({
    peak: z.number().positive().max(1),
    warmupSteps: z.number().int().min(0),
    // cosine decay from peak to minRatio * peak over the stage's steps
    minRatio: z.number().min(0).max(1),
  })
  .strict()

export const stagePlanSchema = z
  .object({
    name: z.string().min(1).max(80),
    context: positiveInt, // tokens per long example in this stage (= n_positions after extension)
    steps: positiveInt, // optimizer steps in this stage
    tokensPerStep: positiveInt, // rows * context summed over micro-batches
    microBatch: positiveInt, // rows per forward/backward
    lr: learningRateSchema,
    pLong: z.number().min(0).max(1), // probability that an example is long (default 0.6)
    packLong: z.boolean(), // long examples may be several documents packed with segment ids
    recompute: z.boolean(),
    evalEvery: z.number().int().min(0), // steps between perplexity evaluations, 0 = stage end only
    checkpointEvery: z.number().int().min(0), // steps between checkpoints, 0 = stage end only
  })
  .strict()

export const runPlanSchema = z
  .object({
    schema: z.literal(PLAN_SCHEMA_VERSION),
    name: z.string().min(1).max(120),
    modelDir: z.string().min(1),
    datasetId: z.string().min(1),
    backend: z.enum(['auto', 'cpu', 'cuda']),
    baseContext: positiveInt, // the model's trained context (n_positions before extension)
    extendMode: z.enum(['tile', 'interpolate', 'random']),
    seed: z.number().int().min(0),
    stages: z.array(stagePlanSchema).min(1).max(8),
    optimizer: z
      .object({
        beta1: z.number().min(0).lt(1),
        beta2: z.number().min(0).lt(1),
        eps: z.number().positive(),
        weightDecay: z.number().min(0),
        gradClip: z.number().min(0),
        masterDtype: z.enum(['fp32', 'bf16']),
      })
      .strict(),
    eval: z
      .object({
        windows: z.array(positiveInt).min(1), // perplexity windows, e.g. base, 2x, 4x
        // cap on held-out windows of the longest length; shorter lengths score the same text cut
        // finer, so the lengths are compared on the same tokens
        maxWindowsPerLength: positiveInt,
        slidingStride: positiveInt.nullable(), // sliding-window perplexity stride, null = off
        passkey: z
          .object({
            lengths: z.array(positiveInt).min(1),
            depths: z.array(z.number().min(0).max(1)).min(1),
            trials: positiveInt,
          })
          .strict()
          .nullable(),
      })
      .strict(),
    keepCheckpoints: positiveInt, // the last N interval checkpoints; stage-end ones are always kept
    // What the default plan (or fit) chose and why, e.g. that the data holds fewer tokens than
    // planned; shown beside the plan, ignored by the trainer.
    notes: z.array(z.string().max(1000)).max(32).optional(),
  })
  .strict()
  .superRefine((plan, ctx) => {
    let previous = plan.baseContext
    plan.stages.forEach((s, i) => {
      if (s.context < previous)
        ctx.addIssue({ code: 'custom', path: ['stages', i, 'context'], message: `must be at least ${previous} (contexts only grow)` })
      if (s.tokensPerStep % (s.microBatch * s.context) !== 0)
        ctx.addIssue({
          code: 'custom',
          path: ['stages', i, 'tokensPerStep'],
          message: `must be a multiple of microBatch x context (${s.microBatch * s.context})`,
        })
      if (s.lr.warmupSteps > s.steps)
        ctx.addIssue({ code: 'custom', path: ['stages', i, 'lr', 'warmupSteps'], message: 'cannot exceed the stage steps' })
      previous = s.context
    })
  })

export type LearningRate = z.infer<typeof learningRateSchema>
export type StagePlan = z.infer<typeof stagePlanSchema>
export type RunPlan = z.infer<typeof runPlanSchema>

// ---- estimates ---------------------------------------------------------------------------

export type FitVerdict = 'fits' | 'tight' | 'does-not-fit'

export interface StageMemoryEstimate {
  stage: string
  context: number
  weightsBytes: number
  optimizerBytes: number
  gradientsBytes: number
  activationsBytes: number
  workspaceBytes: number
  totalBytes: number
  availableBytes: number // free memory of the selected device (GPU, or RAM for the CPU backend)
  verdict: FitVerdict
}

export interface MemoryEstimate {
  device: string // "NVIDIA H100 80GB HBM3" | "CPU (RAM)"
  backend: 'cpu' | 'cuda'
  stages: StageMemoryEstimate[]
}

export interface StageTimeEstimate {
  stage: string
  stepMs: number // measured over a short warm-up
  etaSeconds: number // stepMs x the stage's steps (evaluations and checkpoints not included)
  measuredPeakBytes?: number // the engine's peak allocation during the measured steps
}

// ---- runs --------------------------------------------------------------------------------

export type RunStatus = 'created' | 'running' | 'paused' | 'stopped' | 'interrupted' | 'failed' | 'completed'

export interface RunSummary {
  id: string
  name: string
  status: RunStatus
  // why it stopped/failed and what to change; while running, what the worker is doing between
  // steps ('Baseline evaluation…', 'Pausing: …'), null while it trains
  message: string | null
  createdMs: number
  updatedMs: number
  stageIndex: number
  stageCount: number
  step: number // optimizer steps done, all stages
  totalSteps: number
  baseContext: number
  targetContext: number
  modelDir: string
  datasetId: string
  backend: 'cpu' | 'cuda' | null
  // The latest checkpoint's file name, relative to <run>/checkpoints/ (not a path: use
  // modelSource to open or export it).
  lastCheckpoint: string | null
  // What export and chat open for this run, with absolute paths: the completed run's final/
  // folder, else its latest complete checkpoint on top of the plan's model folder; null before
  // the first checkpoint. Pass it as is to export.start or chat.load.
  modelSource: ModelSourceArg | null
  // perplexity per window at the end (or latest eval) and at the baseline, by window length
  baselinePpl: Record<string, number> | null
  latestPpl: Record<string, number> | null
}

export interface MetricPoint {
  step: number // global optimizer step (1-based)
  stage: number
  stageStep: number
  timeMs: number // wall clock
  loss: number
  lr: number
  gradNorm: number
  tokensPerSec: number
  stepMs: number
  deviceUsedBytes: number | null // whole device (NVML); null on the CPU backend
  deviceTotalBytes: number | null
  engineMappedBytes: number
  engineAllocatedBytes: number
  longFracExamples: number // real long/short ratio so far in this stage
  longFracTokens: number
}

export interface WindowPerplexity {
  length: number
  ppl: number
  nll: number
  predictions: number
}

export interface PasskeyCell {
  length: number
  depth: number
  accuracy: number
  trials: number
}

export interface EvalResult {
  step: number
  // -1 for the baseline: the original model, windows longer than its context scored with the
  // position table tiled to them (unchanged on its own context), as the DESIGN's table does
  stage: number
  label: 'baseline' | 'interval' | 'stage-end'
  timeMs: number
  windows: WindowPerplexity[] // every length on the same held-out text
  // on the first held-out spans within the evaluation's forward budget: comparable across lengths
  // and evaluations, not with `windows` (a smaller sample)
  sliding: Array<{ length: number; stride: number; ppl: number }> | null
  passkey: PasskeyCell[] | null
}

export interface RunDetail {
  summary: RunSummary
  plan: RunPlan
  metrics: MetricPoint[] // possibly downsampled for long runs
  evals: EvalResult[]
  checkpoints: Array<{ path: string; stage: number; step: number; stageEnd: boolean; bytes: number }>
}

const runId = z.string().regex(/^[\w-]{1,80}$/, 'not a run id')

export const runMethodArgs = {
  defaultPlan: z
    .object({ modelDir: z.string().min(1), datasetId: z.string().min(1), targetContext: positiveInt.optional() })
    .strict(),
  estimate: z.object({ plan: runPlanSchema }).strict(),
  fit: z.object({ plan: runPlanSchema }).strict(),
  measure: z.object({ plan: runPlanSchema, steps: z.number().int().min(1).max(20).default(3) }).strict(),
  create: z.object({ plan: runPlanSchema, start: z.boolean().default(true) }).strict(),
  list: z.object({}).strict(),
  get: z.object({ runId, maxPoints: z.number().int().min(10).max(100_000).default(2000) }).strict(),
  control: z.object({ runId }).strict(),
  // "New run -> Demo": imports the bundled corpus with the bundled demo model's tokenizer
  // (instant after the first time) and returns a short CPU plan for them.
  demo: z.object({}).strict(),
}

export interface RunEvents {
  'runs.status': RunSummary
  'runs.metrics': { runId: string; points: MetricPoint[] }
  'runs.eval': { runId: string; result: EvalResult }
}
