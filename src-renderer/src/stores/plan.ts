// The New-run wizard's plan: the default plan for the chosen model and dataset, the user's edits
// (checked as they type, and by the server), the memory estimate per stage (refreshed shortly
// after each valid edit), fit-to-device, the measured speed, and creating the run.
import { defineStore } from 'pinia'
import { computed, onScopeDispose, ref, watch } from 'vue'
import type { ApiError, MemoryEstimate, RunPlan, RunSummary, StageTimeEstimate } from '@contract'
import { api } from '@/api'
import { hasMethod } from '@/api/optional'
import { serverFieldErrors, setAt, validatePlan, type FieldErrors } from '@/runs/plan-rules'
import { useErrorStore } from './errors'

/** How long the plan must stay unchanged before the estimate is asked for again. */
export const ESTIMATE_DEBOUNCE_MS = 350

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T
}

export const usePlanStore = defineStore('plan', () => {
  const errors = useErrorStore()

  const plan = ref<RunPlan | null>(null)
  const loading = ref(false)
  const loadError = ref<ApiError | null>(null)
  /** what the default plan was made for, so a changed model or dataset asks for a new one */
  const madeFor = ref<{ modelDir: string; datasetId: string; targetContext?: number } | null>(null)
  /** the plan came from the demo: its model and dataset are the embedded ones */
  const fromDemo = ref(false)
  /** counts whole-plan replacements (default, fit, demo), so forms can drop what was typed */
  const revision = ref(0)

  const clientErrors = computed<FieldErrors>(() => (plan.value ? validatePlan(plan.value) : {}))
  /** the server's word on fields, until the user edits them */
  const serverErrors = ref<FieldErrors>({})
  /** a server refusal that names no field (shown above the plan) */
  const planError = ref<ApiError | null>(null)
  const fieldErrors = computed<FieldErrors>(() => ({ ...serverErrors.value, ...clientErrors.value }))
  const valid = computed(() => plan.value !== null && Object.keys(clientErrors.value).length === 0)

  const targetContext = computed(() => plan.value?.stages.at(-1)?.context ?? null)

  function invalidArgs(e: unknown, source: string): ApiError {
    const err = errors.report(e, { source, inline: true })
    if (err.code === 'invalid_argument') {
      const byField = serverFieldErrors(err.details)
      if (Object.keys(byField).length) serverErrors.value = { ...serverErrors.value, ...byField }
      else planError.value = err
    } else {
      planError.value = err
    }
    return err
  }

  function resetDerived() {
    estimate.value = null
    estimateError.value = null
    times.value = null
    measureError.value = null
    serverErrors.value = {}
    planError.value = null
    createError.value = null
  }

  let loadSeq = 0
  async function loadDefault(args: { modelDir: string; datasetId: string; targetContext?: number }): Promise<RunPlan | null> {
    const mine = ++loadSeq
    loading.value = true
    loadError.value = null
    try {
      const result = await api.call('runs.defaultPlan', args)
      if (mine !== loadSeq) return null
      madeFor.value = { ...args }
      fromDemo.value = false
      setPlan(result)
      return result
    } catch (e) {
      if (mine !== loadSeq) return null
      loadError.value = errors.report(e, { source: 'runs.defaultPlan', inline: true })
      return null
    } finally {
      if (mine === loadSeq) loading.value = false
    }
  }

  /** Take a whole plan (the default, the fitted one, the demo's). */
  function setPlan(next: RunPlan) {
    resetDerived()
    plan.value = clone(next)
    revision.value++
  }

  /** Edit one field by its dotted path ("stages.1.lr.peak"). */
  function setField(path: string, value: unknown) {
    if (!plan.value) return
    setAt(plan.value, path, value)
    if (serverErrors.value[path] !== undefined) {
      const { [path]: _, ...rest } = serverErrors.value
      serverErrors.value = rest
    }
    planError.value = null
  }

  // ---- memory estimate ----
  const estimate = ref<MemoryEstimate | null>(null)
  const estimating = ref(false)
  const estimateError = ref<ApiError | null>(null)
  /** the plan (as JSON) the shown estimate is for; differs from the current one while stale */
  const estimatedFor = ref<string | null>(null)
  const estimateStale = computed(() => plan.value !== null && estimatedFor.value !== JSON.stringify(plan.value))

  let estimateSeq = 0
  async function refreshEstimate(): Promise<MemoryEstimate | null> {
    if (!plan.value || !valid.value) return null
    const snapshot = JSON.stringify(plan.value)
    const mine = ++estimateSeq
    estimating.value = true
    estimateError.value = null
    try {
      const result = await api.call('runs.estimate', { plan: JSON.parse(snapshot) as RunPlan })
      if (mine !== estimateSeq) return null
      estimate.value = result
      estimatedFor.value = snapshot
      return result
    } catch (e) {
      if (mine !== estimateSeq) return null
      estimateError.value = invalidArgs(e, 'runs.estimate')
      return null
    } finally {
      if (mine === estimateSeq) estimating.value = false
    }
  }

  // Re-estimate a moment after the last edit: typing "16" must not ask for "1" first.
  let timer: ReturnType<typeof setTimeout> | null = null
  const autoEstimate = ref(true)
  watch(
    () => (plan.value ? JSON.stringify(plan.value) : null),
    (now) => {
      if (timer) clearTimeout(timer)
      timer = null
      if (!now || !autoEstimate.value || !valid.value || now === estimatedFor.value) return
      timer = setTimeout(() => {
        timer = null
        void refreshEstimate()
      }, ESTIMATE_DEBOUNCE_MS)
    },
  )
  onScopeDispose(() => {
    if (timer) clearTimeout(timer)
  })

  /** The worst verdict over the stages: the run fits only if every stage does. */
  const verdict = computed(() => {
    const stages = estimate.value?.stages ?? []
    if (stages.length === 0) return null
    if (stages.some((s) => s.verdict === 'does-not-fit')) return 'does-not-fit' as const
    if (stages.some((s) => s.verdict === 'tight')) return 'tight' as const
    return 'fits' as const
  })

  // ---- fit to the device ----
  const fitting = ref(false)
  async function fit(): Promise<boolean> {
    if (!plan.value || !valid.value) return false
    fitting.value = true
    try {
      const fitted = await api.call('runs.fit', { plan: clone(plan.value) })
      setPlan(fitted)
      await refreshEstimate()
      return true
    } catch (e) {
      invalidArgs(e, 'runs.fit')
      return false
    } finally {
      fitting.value = false
    }
  }

  // ---- measured speed ----
  const times = ref<StageTimeEstimate[] | null>(null)
  const measuring = ref(false)
  const measureError = ref<ApiError | null>(null)
  const measuredFor = ref<string | null>(null)
  const timesStale = computed(() => times.value !== null && plan.value !== null && measuredFor.value !== JSON.stringify(plan.value))
  const totalEtaSeconds = computed(() => (times.value ? times.value.reduce((a, t) => a + t.etaSeconds, 0) : null))

  async function measure(steps = 3): Promise<StageTimeEstimate[] | null> {
    if (!plan.value || !valid.value) return null
    const snapshot = JSON.stringify(plan.value)
    measuring.value = true
    measureError.value = null
    try {
      const result = await api.call('runs.measure', { plan: JSON.parse(snapshot) as RunPlan, steps })
      times.value = result
      measuredFor.value = snapshot
      return result
    } catch (e) {
      measureError.value = invalidArgs(e, 'runs.measure')
      return null
    } finally {
      measuring.value = false
    }
  }

  // ---- create the run ----
  const creating = ref(false)
  const createError = ref<ApiError | null>(null)
  async function create(start = true): Promise<RunSummary | null> {
    if (!plan.value || !valid.value) return null
    creating.value = true
    createError.value = null
    try {
      return await api.call('runs.create', { plan: clone(plan.value), start })
    } catch (e) {
      createError.value = invalidArgs(e, 'runs.create')
      return null
    } finally {
      creating.value = false
    }
  }

  // ---- the embedded demo ----
  const demoAvailable = computed(() => hasMethod('runs.demo'))
  const demoLoading = ref(false)
  const demoError = ref<ApiError | null>(null)

  /** Ask the backend for the demo plan (its tiny model and corpus, the corpus imported on first use). */
  async function loadDemo(): Promise<RunPlan | null> {
    if (!demoAvailable.value) return null
    demoLoading.value = true
    demoError.value = null
    try {
      const p = await api.call('runs.demo', {})
      loadSeq++ // a default plan still loading must not replace the demo's
      loading.value = false
      madeFor.value = { modelDir: p.modelDir, datasetId: p.datasetId }
      fromDemo.value = true
      setPlan(p)
      return p
    } catch (e) {
      demoError.value = errors.report(e, { source: 'runs.demo', inline: true })
      return null
    } finally {
      demoLoading.value = false
    }
  }

  function reset() {
    loadSeq++
    estimateSeq++
    plan.value = null
    madeFor.value = null
    fromDemo.value = false
    loading.value = false
    loadError.value = null
    resetDerived()
  }

  return {
    plan,
    loading,
    loadError,
    madeFor,
    fromDemo,
    revision,
    clientErrors,
    serverErrors,
    fieldErrors,
    planError,
    valid,
    targetContext,
    loadDefault,
    setPlan,
    setField,
    estimate,
    estimating,
    estimateError,
    estimateStale,
    autoEstimate,
    refreshEstimate,
    verdict,
    fitting,
    fit,
    times,
    measuring,
    measureError,
    timesStale,
    totalEtaSeconds,
    measure,
    creating,
    createError,
    create,
    demoAvailable,
    demoLoading,
    demoError,
    loadDemo,
    reset,
  }
})
