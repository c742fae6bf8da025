// The wizard's dataset and plan stores, the runs list and the monitor, against the fake transport.
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ApiError, type DatasetImportProgress } from '@contract'
import { installApiClient } from '@/api'
import { useDatasetStore } from '@/stores/dataset'
import { useErrorStore } from '@/stores/errors'
import { mergePoints, useMonitorStore } from '@/stores/monitor'
import { ESTIMATE_DEBOUNCE_MS, usePlanStore } from '@/stores/plan'
import { useRunsStore } from '@/stores/runs'
import {
  FakeApi,
  datasetPreview,
  datasetSummary,
  deferred,
  evalResult,
  memoryEstimate,
  metricPoint,
  runPlan,
  runSummary,
} from './fake-api'

let fake: FakeApi

beforeEach(() => {
  fake = new FakeApi('web', {
    'datasets.preview': (a) => ({ ...datasetPreview, path: a.path }),
    'datasets.import': () => ({ jobId: 'job-1' }),
    'datasets.cancel': () => ({ cancelled: true }),
    'datasets.list': () => [datasetSummary],
    'datasets.get': ({ id }) => ({ ...datasetSummary, id }),
    'runs.defaultPlan': () => structuredClone(runPlan),
    'runs.estimate': () => memoryEstimate,
    'runs.fit': ({ plan }) => ({ ...structuredClone(plan), stages: plan.stages.map((s) => ({ ...s, microBatch: 1, recompute: true })) }) as never,
    'runs.measure': ({ plan }) => plan.stages.map((s) => ({ stage: s.name, stepMs: 200, etaSeconds: s.steps * 0.2 })),
    'runs.create': () => runSummary({ status: 'running' }),
    'runs.list': () => [runSummary()],
    'runs.get': ({ runId }) => ({
      summary: runSummary({ id: runId }),
      plan: runPlan,
      metrics: [metricPoint(1), metricPoint(2)],
      evals: [evalResult('baseline', -1, 0, { 1024: 11.68 })],
      checkpoints: [],
    }),
    'runs.pause': ({ runId }) => runSummary({ id: runId, status: 'paused', updatedMs: 5_000 }),
    'runs.resume': ({ runId }) => runSummary({ id: runId, status: 'running', updatedMs: 6_000 }),
    'runs.stop': ({ runId }) => runSummary({ id: runId, status: 'stopped', updatedMs: 7_000 }),
    'runs.delete': () => ({ deleted: true }),
    'runs.demo': () => ({ ...structuredClone(runPlan), name: 'Demo' }),
  })
  installApiClient(fake)
  setActivePinia(createPinia())
})

afterEach(() => {
  installApiClient(null)
  vi.useRealTimers()
})

function progress(over: Partial<DatasetImportProgress>): DatasetImportProgress {
  return {
    jobId: 'job-1',
    phase: 'tokenizing',
    bytesDone: 10,
    bytesTotal: 100,
    documents: 1,
    tokens: 100,
    mbPerSec: 5,
    etaSeconds: 3,
    done: false,
    ...over,
  }
}

describe('useDatasetStore', () => {
  it('previews a source and uses the detected text field', async () => {
    const ds = useDatasetStore()
    await ds.pick('/data/chapters.jsonl')
    expect(ds.preview?.format).toBe('jsonl')
    expect(ds.isRecords).toBe(true)
    expect(ds.effectiveFields).toEqual(['text'])
    await ds.setFields(['title', 'text'])
    expect(fake.callsOf('datasets.preview').at(-1)?.args).toMatchObject({ field: ['title', 'text'] })
  })

  it('shows a preview failure inline, not as a toast', async () => {
    fake.handlers['datasets.preview'] = () => {
      throw new ApiError('bad_input', 'Not text')
    }
    const ds = useDatasetStore()
    await ds.pick('/bin/ls')
    expect(ds.previewError?.message).toBe('Not text')
    expect(useErrorStore().toasts).toHaveLength(0)
  })

  it('imports with the chosen options, follows progress and selects the new dataset', async () => {
    const ds = useDatasetStore()
    await ds.pick('/data/chapters.jsonl')
    ds.skipBadLines = false
    expect(await ds.startImport('/models/gpt2', 8192)).toBe(true)
    expect(fake.callsOf('datasets.import')[0].args).toEqual({
      path: '/data/chapters.jsonl',
      modelDir: '/models/gpt2',
      field: ['text'],
      onBadLine: 'stop',
    })
    expect(ds.importing).toBe(true)
    fake.emit('datasets.progress', progress({ jobId: 'other-job' })) // not ours
    expect(ds.progress).toBeNull()
    fake.emit('datasets.progress', progress({}))
    expect(ds.progress?.bytesDone).toBe(10)
    fake.emit('datasets.progress', progress({ phase: 'done', done: true, datasetId: 'feedfacefeedface' }))
    expect(ds.importing).toBe(false)
    await vi.waitFor(() => expect(ds.dataset?.id).toBe('feedfacefeedface'))
    expect(fake.callsOf('datasets.get')[0].args).toEqual({ id: 'feedfacefeedface', targetContext: 8192 })
    expect(ds.ready).toBe(true)
  })

  it('keeps progress that arrives before datasets.import answers', async () => {
    const answer = deferred<{ jobId: string }>()
    fake.handlers['datasets.import'] = () => answer.promise
    const ds = useDatasetStore()
    await ds.pick('/data/chapters.jsonl')
    const started = ds.startImport('/models/gpt2')
    fake.emit('datasets.progress', progress({ bytesDone: 42 }))
    answer.resolve({ jobId: 'job-1' })
    await started
    expect(ds.progress?.bytesDone).toBe(42)
  })

  it('reports a failed import inline and lets a new source import again', async () => {
    const ds = useDatasetStore()
    await ds.pick('/data/chapters.jsonl')
    await ds.startImport('/models/gpt2')
    fake.emit('datasets.progress', progress({ phase: 'failed', done: true, error: 'line 3: bad JSON' }))
    expect(ds.importError?.message).toBe('line 3: bad JSON')
    // a new source after an import (done or failed) is importable: the old job must not block it
    await ds.pick('/data/other.jsonl')
    expect(ds.importing).toBe(false)
    expect(ds.importError).toBeNull()
  })

  it('cancels the running job', async () => {
    const ds = useDatasetStore()
    await ds.pick('/data/chapters.jsonl')
    await ds.startImport('/models/gpt2')
    await ds.cancelImport()
    expect(fake.callsOf('datasets.cancel')[0].args).toEqual({ jobId: 'job-1' })
  })

  it('lists datasets imported earlier, newest first, and stops listening when disposed', async () => {
    fake.handlers['datasets.list'] = () => [
      { ...datasetSummary, id: 'a', createdAt: '2025-01-01T00:00:00Z' },
      { ...datasetSummary, id: 'b', createdAt: '2025-06-01T00:00:00Z' },
    ]
    const ds = useDatasetStore()
    await ds.loadList()
    expect(ds.list.map((d) => d.id)).toEqual(['b', 'a'])
    expect(fake.listenerCount('datasets.progress')).toBe(1)
    ds.$dispose()
    expect(fake.listenerCount('datasets.progress')).toBe(0)
  })
})

describe('usePlanStore', () => {
  it('loads the default plan and validates edits as they are typed', async () => {
    const plan = usePlanStore()
    await plan.loadDefault({ modelDir: '/models/gpt2', datasetId: datasetSummary.id })
    expect(plan.valid).toBe(true)
    plan.setField('stages.0.tokensPerStep', 1000)
    expect(plan.valid).toBe(false)
    expect(plan.fieldErrors['stages.0.tokensPerStep']).toMatch(/multiple of microBatch x context/)
    plan.setField('stages.0.tokensPerStep', 8192)
    expect(plan.valid).toBe(true)
  })

  it('re-estimates a moment after the last valid edit, not on every keystroke', async () => {
    vi.useFakeTimers()
    const plan = usePlanStore()
    await plan.loadDefault({ modelDir: '/models/gpt2', datasetId: datasetSummary.id })
    await vi.advanceTimersByTimeAsync(ESTIMATE_DEBOUNCE_MS + 10)
    expect(fake.callsOf('runs.estimate')).toHaveLength(1)
    expect(plan.verdict).toBe('tight') // the worst stage decides
    plan.setField('stages.0.steps', 1)
    await vi.advanceTimersByTimeAsync(50)
    plan.setField('stages.0.steps', 12)
    await vi.advanceTimersByTimeAsync(ESTIMATE_DEBOUNCE_MS + 10)
    expect(fake.callsOf('runs.estimate')).toHaveLength(2)
    expect((fake.callsOf('runs.estimate')[1].args as { plan: { stages: Array<{ steps: number }> } }).plan.stages[0].steps).toBe(12)
    // an invalid plan is not sent
    plan.setField('stages.0.steps', Number.NaN)
    await vi.advanceTimersByTimeAsync(ESTIMATE_DEBOUNCE_MS + 10)
    expect(fake.callsOf('runs.estimate')).toHaveLength(2)
  })

  it('puts the server\'s schema errors next to their fields until the field is edited', async () => {
    fake.handlers['runs.create'] = () => {
      throw new ApiError('invalid_argument', 'Invalid arguments for runs.create.', 'plan.stages.1.steps: Too big')
    }
    const plan = usePlanStore()
    await plan.loadDefault({ modelDir: '/models/gpt2', datasetId: datasetSummary.id })
    expect(await plan.create()).toBeNull()
    expect(plan.fieldErrors['stages.1.steps']).toBe('Too big')
    expect(plan.planError).toBeNull()
    expect(useErrorStore().toasts).toHaveLength(0)
    plan.setField('stages.1.steps', 5)
    expect(plan.fieldErrors['stages.1.steps']).toBeUndefined()
  })

  it('fits the plan to the device and re-estimates', async () => {
    const plan = usePlanStore()
    await plan.loadDefault({ modelDir: '/models/gpt2', datasetId: datasetSummary.id })
    expect(await plan.fit()).toBe(true)
    expect(plan.plan?.stages.every((s) => s.recompute && s.microBatch === 1)).toBe(true)
    expect(fake.callsOf('runs.estimate').length).toBeGreaterThan(0)
    expect(plan.estimateStale).toBe(false)
  })

  it('measures speed and sums the ETA; an edit makes it stale', async () => {
    const plan = usePlanStore()
    await plan.loadDefault({ modelDir: '/models/gpt2', datasetId: datasetSummary.id })
    await plan.measure()
    expect(plan.totalEtaSeconds).toBeCloseTo(4)
    expect(plan.timesStale).toBe(false)
    plan.setField('seed', 2)
    expect(plan.timesStale).toBe(true)
  })

  it('creates the run with start: true', async () => {
    const plan = usePlanStore()
    await plan.loadDefault({ modelDir: '/models/gpt2', datasetId: datasetSummary.id })
    const run = await plan.create()
    expect(run?.id).toBe('run-1')
    expect(fake.callsOf('runs.create')[0].args).toMatchObject({ start: true, plan: { name: runPlan.name } })
  })

  it('takes the demo plan, which a late default plan must not replace', async () => {
    const slow = deferred<typeof runPlan>()
    fake.handlers['runs.defaultPlan'] = () => slow.promise
    const plan = usePlanStore()
    expect(plan.demoAvailable).toBe(true)
    const loading = plan.loadDefault({ modelDir: '/models/gpt2', datasetId: 'x' })
    await plan.loadDemo()
    slow.resolve(structuredClone(runPlan))
    await loading
    expect(plan.plan?.name).toBe('Demo')
    expect(plan.fromDemo).toBe(true)
  })
})

describe('useRunsStore', () => {
  it('lists runs newest first and keeps rows current from status events', async () => {
    fake.handlers['runs.list'] = () => [runSummary({ id: 'old', updatedMs: 1 }), runSummary({ id: 'new', updatedMs: 9 })]
    const runs = useRunsStore()
    await runs.load()
    expect(runs.sorted.map((r) => r.id)).toEqual(['new', 'old'])
    fake.emit('runs.status', runSummary({ id: 'old', status: 'completed', updatedMs: 20 }))
    expect(runs.sorted[0]).toMatchObject({ id: 'old', status: 'completed' })
    // an older report does not roll a row back
    fake.emit('runs.status', runSummary({ id: 'old', status: 'running', updatedMs: 15 }))
    expect(runs.sorted[0].status).toBe('completed')
    fake.emit('runs.status', runSummary({ id: 'brand-new', updatedMs: 30 }))
    expect(runs.runs).toHaveLength(3)
  })

  it('resumes and deletes', async () => {
    const runs = useRunsStore()
    await runs.load()
    await runs.resume('run-1')
    expect(runs.runs[0].status).toBe('running')
    expect(await runs.remove('run-1')).toBe(true)
    expect(runs.runs).toHaveLength(0)
  })

  it('toasts a failed action', async () => {
    fake.handlers['runs.resume'] = () => {
      throw new ApiError('busy', 'Another run is training')
    }
    const runs = useRunsStore()
    expect(await runs.resume('run-1')).toBeNull()
    expect(useErrorStore().toasts[0]).toMatchObject({ message: 'Another run is training', source: 'runs.resume' })
  })
})

describe('useMonitorStore', () => {
  it('attaches to a run and appends live events for it only', async () => {
    const m = useMonitorStore()
    await m.attach('run-1')
    expect(m.metrics.map((p) => p.step)).toEqual([1, 2])
    fake.emit('runs.metrics', { runId: 'run-1', points: [metricPoint(3), metricPoint(4)] })
    fake.emit('runs.metrics', { runId: 'run-2', points: [metricPoint(99)] })
    expect(m.metrics.map((p) => p.step)).toEqual([1, 2, 3, 4])
    fake.emit('runs.eval', { runId: 'run-1', result: evalResult('interval', 0, 4, { 1024: 11.9 }) })
    expect(m.evals).toHaveLength(2)
    fake.emit('runs.status', runSummary({ status: 'interrupted', updatedMs: 3_000, message: 'The worker died' }))
    expect(m.status).toBe('interrupted')
    expect(m.summary?.message).toBe('The worker died')
  })

  it('merges what arrives while runs.get is in flight (a reload mid-run loses nothing)', async () => {
    const answer = deferred<never>()
    const real = fake.handlers['runs.get']!
    fake.handlers['runs.get'] = (a) => answer.promise.then(() => real(a))
    const m = useMonitorStore()
    const attached = m.attach('run-1')
    fake.emit('runs.metrics', { runId: 'run-1', points: [metricPoint(2), metricPoint(3)] })
    fake.emit('runs.eval', { runId: 'run-1', result: evalResult('baseline', -1, 0, { 1024: 11.68 }) })
    fake.emit('runs.status', runSummary({ step: 3, updatedMs: 9_000 }))
    answer.resolve(undefined as never)
    await attached
    expect(m.metrics.map((p) => p.step)).toEqual([1, 2, 3]) // step 2 once
    expect(m.evals).toHaveLength(1) // the same baseline once
    expect(m.summary?.step).toBe(3) // the newer summary wins
  })

  it('replaces re-sent steps after a resume instead of duplicating them', () => {
    const merged = mergePoints([metricPoint(1), metricPoint(2), metricPoint(3)], [metricPoint(3, 0, { loss: 1 }), metricPoint(4)])
    expect(merged.map((p) => p.step)).toEqual([1, 2, 3, 4])
    expect(merged[2].loss).toBe(1)
  })

  it('pauses, resumes and stops the attached run and tells the runs list', async () => {
    const m = useMonitorStore()
    const runs = useRunsStore()
    await m.attach('run-1')
    await m.pause()
    expect(m.status).toBe('paused')
    expect(runs.runs.find((r) => r.id === 'run-1')?.status).toBe('paused')
    await m.resume()
    expect(m.status).toBe('running')
    await m.stop()
    expect(m.status).toBe('stopped')
  })

  it('shows a missing run inline and unsubscribes on dispose', async () => {
    fake.handlers['runs.get'] = () => {
      throw new ApiError('not_found', 'No run gone-1')
    }
    const m = useMonitorStore()
    await m.attach('gone-1')
    expect(m.error?.code).toBe('not_found')
    expect(fake.listenerCount('runs.metrics')).toBe(1)
    m.$dispose()
    expect(fake.listenerCount('runs.metrics')).toBe(0)
    expect(fake.listenerCount('runs.eval')).toBe(0)
  })
})
