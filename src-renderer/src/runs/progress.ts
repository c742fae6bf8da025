// Where a run stands: the stage timeline (progress, elapsed, ETA per stage), the passkey grid,
// and status words. Pure functions of the run's figures, so they are tested without a browser.
import type { EvalResult, MetricPoint, PasskeyCell, RunPlan, RunStatus } from '@contract'

export interface StageProgress {
  index: number
  name: string
  context: number
  steps: number
  stepsDone: number
  /** 0..1 */
  fraction: number
  state: 'done' | 'current' | 'todo'
  elapsedMs: number | null
  etaMs: number | null
}

/** Average step time over the last few steps of a stage: recent speed predicts the rest best. */
function recentStepMs(points: MetricPoint[], window = 20): number | null {
  const tail = points.slice(-window).filter((p) => Number.isFinite(p.stepMs) && p.stepMs > 0)
  if (tail.length === 0) return null
  return tail.reduce((a, p) => a + p.stepMs, 0) / tail.length
}

/**
 * One entry per planned stage. `currentStage` and `stepsDone` come from the run summary (the
 * truth even when metrics were downsampled); elapsed and ETA from the stage's metric points.
 */
export function stageProgress(plan: RunPlan, points: MetricPoint[], currentStage: number, stepsDoneAll: number, finished: boolean): StageProgress[] {
  let before = 0
  return plan.stages.map((s, i) => {
    const mine = points.filter((p) => p.stage === i)
    const doneHere = Math.max(0, Math.min(s.steps, stepsDoneAll - before))
    before += s.steps
    const state: StageProgress['state'] =
      finished || i < currentStage || doneHere >= s.steps ? 'done' : i === currentStage ? 'current' : 'todo'
    // elapsed: the sum of step times, which excludes pauses and evaluation time between steps
    const elapsedMs = mine.length ? mine.reduce((a, p) => a + (Number.isFinite(p.stepMs) ? p.stepMs : 0), 0) : null
    const stepMs = recentStepMs(mine)
    const left = s.steps - doneHere
    return {
      index: i,
      name: s.name,
      context: s.context,
      steps: s.steps,
      stepsDone: doneHere,
      fraction: s.steps > 0 ? doneHere / s.steps : 0,
      state,
      elapsedMs,
      etaMs: state === 'done' ? 0 : stepMs !== null ? left * stepMs : null,
    }
  })
}

export interface PasskeyGrid {
  lengths: number[]
  depths: number[]
  /** cell at [depthIndex][lengthIndex], null where not measured */
  cells: Array<Array<PasskeyCell | null>>
  step: number
  label: EvalResult['label']
}

/** The newest evaluation that ran passkey retrieval, as a length x depth grid. */
export function passkeyGrid(evals: EvalResult[]): PasskeyGrid | null {
  const latest = [...evals].reverse().find((e) => e.passkey && e.passkey.length > 0)
  if (!latest?.passkey) return null
  const lengths = [...new Set(latest.passkey.map((c) => c.length))].sort((a, b) => a - b)
  const depths = [...new Set(latest.passkey.map((c) => c.depth))].sort((a, b) => a - b)
  const cells = depths.map((d) => lengths.map((l) => latest.passkey!.find((c) => c.length === l && c.depth === d) ?? null))
  return { lengths, depths, cells, step: latest.step, label: latest.label }
}

export const STATUS_LABELS: Record<RunStatus, string> = {
  created: 'Created',
  running: 'Running',
  paused: 'Paused',
  stopped: 'Stopped',
  interrupted: 'Interrupted',
  failed: 'Failed',
  completed: 'Completed',
}

export type StatusTone = 'accent' | 'success' | 'warning' | 'danger' | 'neutral'

export const STATUS_TONES: Record<RunStatus, StatusTone> = {
  created: 'neutral',
  running: 'accent',
  paused: 'warning',
  stopped: 'neutral',
  interrupted: 'warning',
  failed: 'danger',
  completed: 'success',
}

export function canPause(s: RunStatus): boolean {
  return s === 'running'
}

/** A run that is not going and not finished can continue from its last checkpoint. */
export function canResume(s: RunStatus): boolean {
  return s === 'paused' || s === 'interrupted' || s === 'stopped' || s === 'created'
}

export function canStop(s: RunStatus): boolean {
  return s === 'running' || s === 'paused'
}

export function isLive(s: RunStatus): boolean {
  return s === 'running'
}
