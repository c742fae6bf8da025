// The plan's validation rules, checked in the renderer as the user types. They mirror the zod
// schema in src-main/api/runs.ts (runPlanSchema and its superRefine) by hand, because importing
// the schema would bundle zod into the renderer; the server checks again and its answer wins
// (see serverFieldErrors). Errors are keyed by the field's path in the plan, dotted:
// "seed", "stages.1.lr.peak", "eval.passkey.depths".
import type { RunPlan, StagePlan } from '@contract'

export type FieldErrors = Record<string, string>

function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v)
}

function intAtLeast(v: unknown, min: number): string | null {
  if (!isNum(v)) return 'enter a number'
  if (!Number.isInteger(v)) return 'must be a whole number'
  if (v < min) return min === 1 ? 'must be at least 1' : `must be at least ${min}`
  return null
}

function numIn(v: unknown, min: number, max: number, opts: { minOpen?: boolean; maxOpen?: boolean } = {}): string | null {
  if (!isNum(v)) return 'enter a number'
  if (opts.minOpen ? v <= min : v < min) return opts.minOpen ? `must be more than ${min}` : `must be at least ${min}`
  if (opts.maxOpen ? v >= max : v > max) return opts.maxOpen ? `must be less than ${max}` : `must be at most ${max}`
  return null
}

function intList(v: unknown, min: number): string | null {
  if (!Array.isArray(v) || v.length === 0) return 'list at least one value'
  for (const x of v) {
    const e = intAtLeast(x, min)
    if (e) return `every value ${e === 'enter a number' ? 'must be a number' : e}`
  }
  return null
}

/** Every rule of the plan schema; an empty object means the plan would be accepted. */
export function validatePlan(plan: RunPlan): FieldErrors {
  const errors: FieldErrors = {}
  const put = (path: string, message: string | null) => {
    if (message && !errors[path]) errors[path] = message
  }

  const name = plan.name?.trim() ?? ''
  put('name', name.length === 0 ? 'give the run a name' : plan.name.length > 120 ? 'at most 120 characters' : null)
  put('baseContext', intAtLeast(plan.baseContext, 1))
  put('seed', intAtLeast(plan.seed, 0))
  put('keepCheckpoints', intAtLeast(plan.keepCheckpoints, 1))

  if (plan.stages.length === 0) put('stages', 'a plan needs at least one stage')
  if (plan.stages.length > 8) put('stages', 'at most 8 stages')
  let previous = plan.baseContext
  plan.stages.forEach((s, i) => {
    for (const [key, message] of Object.entries(validateStage(s))) put(`stages.${i}.${key}`, message)
    // the cross-field rules of the schema's superRefine, same order and wording
    if (isNum(s.context) && isNum(previous) && s.context < previous)
      put(`stages.${i}.context`, `must be at least ${previous} (contexts only grow)`)
    if (isNum(s.tokensPerStep) && isNum(s.microBatch) && isNum(s.context) && s.microBatch > 0 && s.context > 0) {
      const unit = s.microBatch * s.context
      if (s.tokensPerStep % unit !== 0) put(`stages.${i}.tokensPerStep`, `must be a multiple of microBatch x context (${unit})`)
    }
    if (isNum(s.lr.warmupSteps) && isNum(s.steps) && s.lr.warmupSteps > s.steps)
      put(`stages.${i}.lr.warmupSteps`, 'cannot exceed the stage steps')
    if (isNum(s.context)) previous = s.context
  })

  const o = plan.optimizer
  put('optimizer.beta1', numIn(o.beta1, 0, 1, { maxOpen: true }))
  put('optimizer.beta2', numIn(o.beta2, 0, 1, { maxOpen: true }))
  put('optimizer.eps', isNum(o.eps) ? (o.eps > 0 ? null : 'must be more than 0') : 'enter a number')
  put('optimizer.weightDecay', isNum(o.weightDecay) ? (o.weightDecay >= 0 ? null : 'must be at least 0') : 'enter a number')
  put('optimizer.gradClip', isNum(o.gradClip) ? (o.gradClip >= 0 ? null : 'must be at least 0') : 'enter a number')

  const e = plan.eval
  put('eval.windows', intList(e.windows, 1))
  put('eval.maxWindowsPerLength', intAtLeast(e.maxWindowsPerLength, 1))
  if (e.slidingStride !== null) put('eval.slidingStride', intAtLeast(e.slidingStride, 1))
  if (e.passkey) {
    put('eval.passkey.lengths', intList(e.passkey.lengths, 1))
    const d = e.passkey.depths
    put(
      'eval.passkey.depths',
      !Array.isArray(d) || d.length === 0
        ? 'list at least one depth'
        : d.some((x) => !isNum(x) || x < 0 || x > 1)
          ? 'depths are fractions from 0 (start) to 1 (end)'
          : null,
    )
    put('eval.passkey.trials', intAtLeast(e.passkey.trials, 1))
  }
  return errors
}

/** The per-field rules of one stage, keyed relative to the stage ("lr.peak"). */
export function validateStage(s: StagePlan): FieldErrors {
  const errors: FieldErrors = {}
  const put = (k: string, m: string | null) => {
    if (m) errors[k] = m
  }
  put('name', !s.name?.trim() ? 'give the stage a name' : s.name.length > 80 ? 'at most 80 characters' : null)
  put('context', intAtLeast(s.context, 1))
  put('steps', intAtLeast(s.steps, 1))
  put('tokensPerStep', intAtLeast(s.tokensPerStep, 1))
  put('microBatch', intAtLeast(s.microBatch, 1))
  put('lr.peak', numIn(s.lr.peak, 0, 1, { minOpen: true }))
  put('lr.warmupSteps', intAtLeast(s.lr.warmupSteps, 0))
  put('lr.minRatio', numIn(s.lr.minRatio, 0, 1))
  put('pLong', numIn(s.pLong, 0, 1))
  put('evalEvery', intAtLeast(s.evalEvery, 0))
  put('checkpointEvery', intAtLeast(s.checkpointEvery, 0))
  return errors
}

/**
 * The server's validation errors, by field. The core reports a failed schema as
 * details "plan.stages.0.steps: Too small…; plan.seed: …" (path, colon, message, joined by "; ");
 * the leading "plan." is the argument's name and is dropped so keys match validatePlan's.
 */
export function serverFieldErrors(details: string | undefined | null): FieldErrors {
  const errors: FieldErrors = {}
  if (!details) return errors
  // split only where a new "path: " starts, so a message containing "; " stays whole
  for (const part of details.split(/;\s+(?=[\w.()-]+:\s)/)) {
    const m = part.match(/^([\w.()-]+):\s*([\s\S]*)$/)
    if (!m) continue
    const path = m[1].replace(/^plan\.?/, '') || '(plan)'
    if (!errors[path]) errors[path] = m[2].trim()
  }
  return errors
}

/** Reads a dotted path ("stages.0.lr.peak") from a plan. */
export function getAt(obj: unknown, path: string): unknown {
  let cur: unknown = obj
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<string, unknown>)[key]
  }
  return cur
}

/** Writes a dotted path in place (the parents must exist). */
export function setAt(obj: object, path: string, value: unknown): void {
  const keys = path.split('.')
  let cur = obj as Record<string, unknown>
  for (const key of keys.slice(0, -1)) {
    const next = cur[key]
    if (next === null || typeof next !== 'object') throw new Error(`no field ${path}`)
    cur = next as Record<string, unknown>
  }
  cur[keys[keys.length - 1]] = value
}

/** "2048, 4096 8192" → [2048, 4096, 8192]; anything unreadable becomes NaN so validation names it. */
export function parseNumberList(text: string): number[] {
  return text
    .split(/[\s,;]+/)
    .filter(Boolean)
    .map((t) => {
      const k = t.match(/^(\d+(?:\.\d+)?)k$/i)
      return k ? Math.round(Number(k[1]) * 1024) : Number(t)
    })
}

/** Rows of the stage per optimizer step: tokensPerStep / context (how many sequences it sees). */
export function rowsPerStep(s: StagePlan): number | null {
  if (!isNum(s.tokensPerStep) || !isNum(s.context) || s.context <= 0) return null
  return s.tokensPerStep / s.context
}
