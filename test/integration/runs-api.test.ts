// The runs.* methods and events through the core (what both transports carry): argument
// validation, the plan helpers, a run from create to delete with its events, and the demo.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiError, MemoryEstimate, RunDetail, RunPlan, RunSummary, StageTimeEstimate } from '../../src-main/api/contract.ts'
import { createCore, type Core } from '../../src-main/core/core.ts'
import { createNativeProbe } from '../../src-main/core/native-probe.ts'
import { isolatedEnv } from '../helpers/temp.ts'
import { fixtureModel, runTestData, tinyPlan, waitFor, type RunTestData } from '../helpers/runs.ts'

let data: RunTestData
let core: Core

beforeAll(async () => {
  data = await runTestData()
  core = await createCore({ mode: 'web', native: createNativeProbe(), env: { ...isolatedEnv(data.dir), LONGCTX_THREADS: '1' } })
})
afterAll(async () => {
  await core?.dispose()
  await data?.cleanup()
})

const call = <T>(name: string, args: unknown) => core.call(name, args) as Promise<T>
const failure = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as ApiError)

describe('runs API', () => {
  it('plans on the backend chosen in Settings', async () => {
    await call('settings.update', { backend: 'cpu' })
    const plan = await call<RunPlan>('runs.defaultPlan', { modelDir: fixtureModel, datasetId: data.datasetId, targetContext: 512 })
    expect(plan.backend).toBe('cpu')
    await call('settings.update', { backend: 'auto' })
    expect((await call<RunPlan>('runs.defaultPlan', { modelDir: fixtureModel, datasetId: data.datasetId })).backend).toBe('auto')
  })

  it('defaultPlan, estimate, fit and measure', async () => {
    const plan = await call<RunPlan>('runs.defaultPlan', { modelDir: fixtureModel, datasetId: data.datasetId, targetContext: 512 })
    expect(plan.stages.map((s) => s.name)).toEqual(['256', '512'])
    const est = await call<MemoryEstimate>('runs.estimate', { plan })
    expect(est).toMatchObject({ backend: 'cpu', device: 'CPU (RAM)' })
    expect(est.stages.map((s) => s.verdict)).toEqual(['fits', 'fits'])
    expect(est.stages[1]!.totalBytes).toBeGreaterThan(est.stages[0]!.totalBytes)
    const fitted = await call<RunPlan>('runs.fit', { plan })
    expect(fitted.stages).toEqual(plan.stages) // it already fits
    const times = await call<StageTimeEstimate[]>('runs.measure', { plan: tinyPlan(data.datasetId), steps: 1 })
    expect(times.map((t) => t.stage)).toEqual(['256', '512'])
    for (const [i, t] of times.entries()) {
      expect(t.stepMs).toBeGreaterThan(0)
      expect(t.etaSeconds).toBeCloseTo((t.stepMs * tinyPlan(data.datasetId).stages[i]!.steps) / 1000, 6)
      expect(t.measuredPeakBytes).toBeGreaterThan(0)
    }
  })

  it('validates plans at the contract, naming the field', async () => {
    const bad = { ...tinyPlan(data.datasetId), stages: [{ ...tinyPlan(data.datasetId).stages[0]!, tokensPerStep: 300 }] }
    const err = await failure(call('runs.create', { plan: bad }))
    expect(err?.code).toBe('invalid_argument')
    expect(err?.details).toMatch(/plan\.stages\.0\.tokensPerStep: must be a multiple of microBatch x context \(256\)/)
    expect((await failure(call('runs.get', { runId: '../etc' })))?.code).toBe('invalid_argument')
    expect((await failure(call('runs.get', { runId: 'nope' })))?.code).toBe('not_found')
  })

  it('create -> events -> completed -> list, get -> delete', async () => {
    const statuses: RunSummary[] = []
    let metricPoints = 0
    let evals = 0
    const offs = [
      core.on('runs.status', (s) => statuses.push(s)),
      core.on('runs.metrics', (m) => (metricPoints += m.points.length)),
      core.on('runs.eval', () => evals++),
    ]
    const created = await call<RunSummary>('runs.create', { plan: tinyPlan(data.datasetId) })
    expect(created.status).toBe('running')
    // a second run cannot train beside it
    const busy = await failure(call('runs.create', { plan: tinyPlan(data.datasetId) }))
    expect(busy?.code).toBe('busy')
    await waitFor(() => statuses.some((s) => s.id === created.id && s.status === 'completed'), 60_000, 'completed')
    offs.forEach((off) => off())
    expect(metricPoints).toBe(9)
    expect(evals).toBe(5)
    const list = await call<RunSummary[]>('runs.list', {})
    expect(list.find((s) => s.id === created.id)?.status).toBe('completed')
    const detail = await call<RunDetail>('runs.get', { runId: created.id, maxPoints: 10 })
    expect(detail.metrics).toHaveLength(9)
    expect(detail.evals[0]!.label).toBe('baseline')
    expect(detail.summary.baselinePpl).not.toBeNull()
    expect(await call('runs.delete', { runId: created.id })).toEqual({ deleted: true })
    expect(existsSync(join(data.runsDir, created.id))).toBe(false)
  })

  it('runs.demo imports the bundled corpus with the demo tokenizer and plans 256 -> 512 -> 1k', async () => {
    const plan = await call<RunPlan>('runs.demo', {})
    expect(plan.baseContext).toBe(256)
    expect(plan.stages.map((s) => [s.name, s.context])).toEqual([
      ['512', 512],
      ['1k', 1024],
    ])
    expect(plan.modelDir).toMatch(/resources[/\\]demo$/)
    expect(existsSync(join(data.datasetsDir, plan.datasetId, 'manifest.json'))).toBe(true)
    // the second time the import is cached
    const t0 = performance.now()
    expect((await call<RunPlan>('runs.demo', {})).datasetId).toBe(plan.datasetId)
    expect(performance.now() - t0).toBeLessThan(3000)
    const est = await call<MemoryEstimate>('runs.estimate', { plan })
    expect(est.stages.every((s) => s.verdict === 'fits')).toBe(true)
  })
})
