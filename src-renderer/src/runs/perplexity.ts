// Perplexity per window as the monitor and the runs list show it: the baseline (before training),
// the value after each stage, the latest, and the change against the baseline.
import type { EvalResult } from '@contract'

export type PplTone = 'better' | 'same' | 'worse' | 'new'

export interface PplRow {
  window: number
  baseline: number | null
  /** after each stage (stage-end evaluations), by stage index; null where not measured yet */
  perStage: Array<number | null>
  latest: number | null
  /** latest / baseline - 1, in percent; null without a baseline */
  changePct: number | null
  tone: PplTone
}

/**
 * Within this much of the baseline a change is "the same": evaluation on a few held-out
 * windows is noisy, and tiling keeps the short-window perplexity nearly unchanged by design.
 */
export const SAME_WITHIN_PCT = 2

export function pplTone(changePct: number | null): PplTone {
  if (changePct === null) return 'new'
  if (Math.abs(changePct) <= SAME_WITHIN_PCT) return 'same'
  return changePct < 0 ? 'better' : 'worse'
}

function pplOf(e: EvalResult | undefined, window: number): number | null {
  const w = e?.windows.find((x) => x.length === window)
  return w && Number.isFinite(w.ppl) ? w.ppl : null
}

/**
 * One row per window length: those the plan evaluates, plus any an evaluation reported.
 * The baseline is the evaluation labelled 'baseline' (stage -1); "latest" is the last evaluation
 * that measured the window, so a window only measured at a later stage still shows its newest value.
 */
export function perplexityRows(evals: EvalResult[], planWindows: number[], stageCount: number): PplRow[] {
  const windows = new Set<number>(planWindows)
  for (const e of evals) for (const w of e.windows) windows.add(w.length)
  const baselineEval = evals.find((e) => e.label === 'baseline')
  const stageEnds: Array<EvalResult | undefined> = Array.from({ length: stageCount }, (_, i) =>
    // the last stage-end evaluation of stage i (a resumed stage can report it again)
    evals.filter((e) => e.label === 'stage-end' && e.stage === i).at(-1),
  )
  return [...windows]
    .sort((a, b) => a - b)
    .map((window) => {
      const baseline = pplOf(baselineEval, window)
      let latest: number | null = null
      for (let i = evals.length - 1; i >= 0 && latest === null; i--) {
        if (evals[i].label !== 'baseline') latest = pplOf(evals[i], window)
      }
      const changePct = baseline !== null && latest !== null ? (latest / baseline - 1) * 100 : null
      return {
        window,
        baseline,
        perStage: stageEnds.map((e) => pplOf(e, window)),
        latest,
        changePct,
        tone: pplTone(changePct),
      }
    })
}

/**
 * The same figures from a run summary (the runs list has no evaluations, only baselinePpl and
 * latestPpl keyed by window length as a string).
 */
export function summaryPplRows(baseline: Record<string, number> | null, latest: Record<string, number> | null) {
  const keys = new Set([...Object.keys(baseline ?? {}), ...Object.keys(latest ?? {})])
  return [...keys]
    .map(Number)
    .filter((n) => Number.isFinite(n))
    .sort((a, b) => a - b)
    .map((window) => {
      const b = baseline?.[String(window)] ?? null
      const l = latest?.[String(window)] ?? null
      const changePct = b !== null && l !== null ? (l / b - 1) * 100 : null
      return { window, baseline: b, latest: l, changePct, tone: pplTone(changePct) }
    })
}
