// The run on the Monitor page: runs.get when it opens (so a reload or a reopened window
// re-attaches to a run in progress), then 'runs.metrics' / 'runs.eval' / 'runs.status' events
// appended as they come. Events that arrive while runs.get is in flight are kept and merged.
import { defineStore } from 'pinia'
import { computed, onScopeDispose, ref, shallowRef } from 'vue'
import type { ApiError, EvalResult, MetricPoint, RunDetail, RunPlan, RunSummary } from '@contract'
import { api } from '@/api'
import { useErrorStore } from './errors'
import { useRunsStore } from './runs'

/** Points asked of runs.get: plenty for a chart, light to send. */
export const DETAIL_MAX_POINTS = 4000

function evalKey(e: EvalResult): string {
  return `${e.label}:${e.stage}:${e.step}`
}

function mergeEvals(a: EvalResult[], b: EvalResult[]): EvalResult[] {
  const byKey = new Map<string, EvalResult>()
  for (const e of [...a, ...b]) byKey.set(evalKey(e), e)
  return [...byKey.values()].sort((x, y) => x.timeMs - y.timeMs || x.step - y.step)
}

/** Appends points in step order; a step seen again (a resumed run redoing it) replaces the old one. */
export function mergePoints(have: MetricPoint[], add: MetricPoint[]): MetricPoint[] {
  if (add.length === 0) return have
  const last = have.at(-1)?.step ?? -Infinity
  if (add.every((p, i) => p.step > (i === 0 ? last : add[i - 1].step))) return [...have, ...add]
  const byStep = new Map<number, MetricPoint>()
  for (const p of have) byStep.set(p.step, p)
  for (const p of add) byStep.set(p.step, p)
  return [...byStep.values()].sort((a, b) => a.step - b.step)
}

export const useMonitorStore = defineStore('monitor', () => {
  const errors = useErrorStore()
  const runsStore = useRunsStore()

  const runId = ref<string | null>(null)
  const summary = ref<RunSummary | null>(null)
  const plan = shallowRef<RunPlan | null>(null)
  // shallow: thousands of points must not each become reactive; every change replaces the array
  const metrics = shallowRef<MetricPoint[]>([])
  const evals = shallowRef<EvalResult[]>([])
  const checkpoints = shallowRef<RunDetail['checkpoints']>([])
  const loading = ref(false)
  const error = ref<ApiError | null>(null)
  const acting = ref<null | 'pause' | 'resume' | 'stop'>(null)
  /** when the last live event for this run arrived (for "live" vs "stale" in the header) */
  const lastEventMs = ref<number | null>(null)

  let pendingPoints: MetricPoint[] = []
  let pendingEvals: EvalResult[] = []
  let pendingSummary: RunSummary | null = null
  let fetching = false

  const status = computed(() => summary.value?.status ?? null)
  const latest = computed(() => metrics.value.at(-1) ?? null)

  let seq = 0
  /** Show a run: fetch what it has so far and follow it live. */
  async function attach(id: string): Promise<boolean> {
    const mine = ++seq
    if (runId.value !== id) {
      summary.value = null
      plan.value = null
      metrics.value = []
      evals.value = []
      checkpoints.value = []
      lastEventMs.value = null
    }
    runId.value = id
    loading.value = true
    error.value = null
    pendingPoints = []
    pendingEvals = []
    pendingSummary = null
    fetching = true
    try {
      const d = await api.call('runs.get', { runId: id, maxPoints: DETAIL_MAX_POINTS })
      if (mine !== seq) return false
      plan.value = d.plan
      checkpoints.value = d.checkpoints
      metrics.value = mergePoints(d.metrics, pendingPoints)
      evals.value = mergeEvals(d.evals, pendingEvals)
      // assigned by the event handler while we awaited, which TypeScript cannot see
      const newer = pendingSummary as RunSummary | null
      summary.value = newer && newer.updatedMs >= d.summary.updatedMs ? newer : d.summary
      runsStore.upsert(summary.value)
      return true
    } catch (e) {
      if (mine !== seq) return false
      error.value = errors.report(e, { source: 'runs.get', inline: true })
      return false
    } finally {
      if (mine === seq) {
        fetching = false
        loading.value = false
        pendingPoints = []
        pendingEvals = []
        pendingSummary = null
      }
    }
  }

  function detach() {
    seq++
    fetching = false
    runId.value = null
    summary.value = null
    plan.value = null
    metrics.value = []
    evals.value = []
    checkpoints.value = []
    error.value = null
    loading.value = false
  }

  const offMetrics = api.on('runs.metrics', ({ runId: id, points }) => {
    if (id !== runId.value) return
    lastEventMs.value = Date.now()
    if (fetching) pendingPoints.push(...points)
    else metrics.value = mergePoints(metrics.value, points)
  })
  const offEval = api.on('runs.eval', ({ runId: id, result }) => {
    if (id !== runId.value) return
    lastEventMs.value = Date.now()
    if (fetching) pendingEvals.push(result)
    else evals.value = mergeEvals(evals.value, [result])
  })
  const offStatus = api.on('runs.status', (s) => {
    if (s.id !== runId.value) return
    lastEventMs.value = Date.now()
    if (fetching) pendingSummary = s
    else if (!summary.value || s.updatedMs >= summary.value.updatedMs) summary.value = s
  })
  onScopeDispose(() => {
    offMetrics()
    offEval()
    offStatus()
  })

  async function control(action: 'pause' | 'resume' | 'stop'): Promise<boolean> {
    const id = runId.value
    if (!id || acting.value) return false
    acting.value = action
    try {
      const s = await api.call(`runs.${action}`, { runId: id })
      if (id === runId.value && (!summary.value || s.updatedMs >= summary.value.updatedMs)) summary.value = s
      runsStore.upsert(s)
      return true
    } catch (e) {
      errors.report(e, { source: `runs.${action}` })
      return false
    } finally {
      acting.value = null
    }
  }

  return {
    runId,
    summary,
    plan,
    metrics,
    evals,
    checkpoints,
    loading,
    error,
    acting,
    lastEventMs,
    status,
    latest,
    attach,
    detach,
    pause: () => control('pause'),
    resume: () => control('resume'),
    stop: () => control('stop'),
  }
})
