// The messages between the supervising process (the app's core, or the CLI) and the training
// worker (a child process that loads the native engine), over Node's IPC channel.
//
// The supervisor sends one 'start' with the job, then possibly 'pause' or 'stop'. The worker
// answers with 'started', then any number of metrics / eval / checkpoint / phase messages, then
// exactly one 'finished' before it exits. A worker that exits without 'finished' died (a crash,
// an abort in native code, SIGKILL): the run is then 'interrupted'.
import type { EvalResult, MetricPoint, RunPlan, StageTimeEstimate } from '../api/runs.ts'
import type { CheckpointInfo } from '../core/runs/store.ts'

export interface TrainJob {
  kind: 'train'
  runDir: string // plan.json is read from here; checkpoints/ and final/ are written here
  datasetsDir: string
  threads: number // CPU backend threads, 0 = all cores
  resumeFrom: CheckpointInfo | null
}

export interface MeasureJob {
  kind: 'measure'
  plan: RunPlan
  datasetsDir: string
  threads: number
  steps: number // measured steps per stage, after one warm-up step
}

export type WorkerJob = TrainJob | MeasureJob

export type ToWorker = { type: 'start'; job: WorkerJob } | { type: 'pause' } | { type: 'stop' }

// 'paused' and 'stopped' both end with a checkpoint of the last finished step; 'stopped' is final.
export type FinishStatus = 'completed' | 'paused' | 'stopped' | 'failed'

export type FromWorker =
  | { type: 'started'; pid: number; backend: 'cpu' | 'cuda'; device: string }
  // What the worker is doing between steps (e.g. "baseline evaluation"), for the status line.
  | { type: 'phase'; stage: number; step: number; text: string }
  | { type: 'metrics'; points: MetricPoint[] }
  | { type: 'eval'; result: EvalResult }
  | { type: 'checkpoint'; info: CheckpointInfo; removed: string[] }
  | { type: 'measured'; stages: StageTimeEstimate[] }
  | { type: 'finished'; status: FinishStatus; message: string | null }

export function isFromWorker(m: unknown): m is FromWorker {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string'
}
