// Shapes a run's metric points and evaluations into the column arrays uPlot draws: one shared x
// column (the global optimizer step) and one y column per series, null where a series has no value.
import type { EvalResult, MetricPoint, RunPlan } from '@contract'

/** uPlot's AlignedData, spelled out so this module needs no uPlot import. */
export type Columns = [xs: number[], ...ys: Array<Array<number | null>>]

export interface SeriesSpec {
  label: string
  /** a theme variable ("--accent") or a literal colour */
  color: string
  dash?: number[]
  /** draw dots at the points (sparse series such as evaluations) */
  points?: boolean
  width?: number
}

/** Charts take the points in step order without repeats (a resumed run may re-send a step). */
export function orderedPoints(points: MetricPoint[]): MetricPoint[] {
  const byStep = new Map<number, MetricPoint>()
  for (const p of points) byStep.set(p.step, p) // the newest report of a step wins
  return [...byStep.values()].sort((a, b) => a.step - b.step)
}

export function metricColumns(points: MetricPoint[], pick: Array<(p: MetricPoint) => number | null>): Columns {
  const xs = points.map((p) => p.step)
  const ys = pick.map((f) => points.map((p) => {
    const v = f(p)
    return typeof v === 'number' && Number.isFinite(v) ? v : null
  }))
  return [xs, ...ys]
}

/**
 * Where each stage after the first begins, for the vertical lines on the charts: half-way between
 * the last step of one stage and the first of the next (steps are 1-based, so stage 2 of a plan
 * with 100 steps in stage 1 starts at step 101 and the line sits at 100.5). From the plan, so the
 * lines are there before the run reaches them.
 */
export function stageBoundaries(plan: RunPlan): Array<{ step: number; label: string }> {
  const out: Array<{ step: number; label: string }> = []
  let done = 0
  plan.stages.forEach((s, i) => {
    if (i > 0) out.push({ step: done + 0.5, label: s.name })
    done += s.steps
  })
  return out
}

/**
 * Perplexity per window over training: x = the evaluation's step (the baseline at 0), one
 * column per window length. Several evaluations at one step (a stage end right after an
 * interval eval) keep the last.
 */
export function perplexityColumns(evals: EvalResult[]): { windows: number[]; data: Columns } {
  const windows = [...new Set(evals.flatMap((e) => e.windows.map((w) => w.length)))].sort((a, b) => a - b)
  const byStep = new Map<number, EvalResult>()
  for (const e of evals) byStep.set(e.label === 'baseline' ? 0 : e.step, e)
  const steps = [...byStep.keys()].sort((a, b) => a - b)
  const ys = windows.map((w) =>
    steps.map((s) => {
      const v = byStep.get(s)!.windows.find((x) => x.length === w)?.ppl
      return typeof v === 'number' && Number.isFinite(v) ? v : null
    }),
  )
  return { windows, data: [steps, ...ys] }
}

/** Colours for n lines in a stable order that reads in both themes. */
export const SERIES_COLORS = ['--accent', '--attn-sparse', '--attn-window', '--danger', '--success', '--warning', '--text-muted']

export function seriesColor(i: number): string {
  return SERIES_COLORS[i % SERIES_COLORS.length]
}

/** Keeps at most `max` points, evenly spaced and always the last, so a long run stays light to draw. */
export function thinPoints<T>(points: T[], max: number): T[] {
  if (points.length <= max || max < 2) return points
  const out: T[] = []
  const stride = (points.length - 1) / (max - 1)
  for (let i = 0; i < max; i++) out.push(points[Math.round(i * stride)])
  return out
}
