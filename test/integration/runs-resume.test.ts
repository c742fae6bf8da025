// Killing the training worker with SIGKILL mid-run marks the run interrupted; resuming continues
// from the last checkpoint with the same data order and optimizer state, so the run ends with
// exactly the weights, losses and evaluations of a run that was never interrupted. A pause and
// a service restart (the app closing while the run trains) must end the same way.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { EvalResult, MetricPoint, RunSummary } from '../../src-main/api/runs.ts'
import { readState, runPaths, writeJsonAtomic } from '../../src-main/core/runs/store.ts'
import { openService, runTestData, tinyPlan, waitFor, type RunTestData } from '../helpers/runs.ts'

let data: RunTestData
let reference: { weights: Buffer; metrics: MetricPoint[]; evals: EvalResult[] }

async function readRun(id: string) {
  const paths = runPaths(join(data.runsDir, id))
  const jsonl = async <T>(f: string) => (await readFile(f, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as T)
  return {
    weights: await readFile(join(paths.final, 'model.safetensors')),
    metrics: await jsonl<MetricPoint>(paths.metrics),
    evals: await jsonl<EvalResult>(paths.evals),
  }
}

// What must match bit for bit (times and speeds differ between runs).
const trained = (m: MetricPoint[]) => m.map((p) => [p.step, p.stage, p.stageStep, p.loss, p.lr, p.gradNorm, p.longFracExamples, p.longFracTokens])
const scored = (e: EvalResult[]) => e.map((r) => [r.label, r.stage, r.step, r.windows, r.sliding, r.passkey])

function expectSameAsReference(run: Awaited<ReturnType<typeof readRun>>): void {
  expect(trained(run.metrics)).toEqual(trained(reference.metrics))
  expect(scored(run.evals)).toEqual(scored(reference.evals))
  expect(run.weights.equals(reference.weights)).toBe(true)
}

const stepsSeen = (events: { metrics: Array<{ runId: string; points: MetricPoint[] }> }, id: string) =>
  Math.max(0, ...events.metrics.filter((m) => m.runId === id).flatMap((m) => m.points.map((p) => p.step)))

beforeAll(async () => {
  data = await runTestData()
  const { service } = await openService(data)
  const r = await service.create(tinyPlan(data.datasetId), true)
  const end = await service.waitForEnd(r.id)
  expect(end.status, end.message ?? '').toBe('completed')
  reference = await readRun(r.id)
  expect(reference.metrics).toHaveLength(9)
})
afterAll(() => data?.cleanup())

describe('interrupt and resume', () => {
  it('SIGKILL mid-stage, twice, then resume: bit-exact with the uninterrupted run', async () => {
    // A slow step (fault injection) so the kills land mid-run; above the worker's 250 ms metrics
    // batching, so every step is reported as it ends.
    const { service, events } = await openService(data, { workerEnv: { ...process.env, LONGCTX_WORKER_FAULTS: 'delay=300' } })
    const created = await service.create(tinyPlan(data.datasetId), true)
    const dir = join(data.runsDir, created.id)
    let end: RunSummary = created

    // Kill 1 in stage 0, after the interval checkpoint of step 2: resumes mid-stage.
    // Kill 2 in stage 1, after step 7's checkpoint: resumes mid-stage from a later stage.
    for (const killAfter of [3, 8]) {
      await waitFor(() => stepsSeen(events, created.id) >= killAfter, 60_000, `step ${killAfter}`)
      const { workerPid } = await readState(dir)
      process.kill(workerPid!, 'SIGKILL')
      end = await service.waitForEnd(created.id)
      expect(end.status).toBe('interrupted')
      expect(end.message).toMatch(/stopped unexpectedly \(killed by SIGKILL\)/)
      expect(end.message).toMatch(/Resume continues from the checkpoint at step \d+/)
      expect((await readState(dir)).status).toBe('interrupted')
      const resumed = await service.resume(created.id)
      expect(resumed.status).toBe('running')
      // the last checkpoint before the kill: step 2 (or 4 if the kill came late), step 7
      expect(killAfter === 3 ? [2, 4] : [7]).toContain(resumed.step)
    }
    end = await service.waitForEnd(created.id)
    expect(end.status, end.message ?? '').toBe('completed')
    expectSameAsReference(await readRun(created.id))
  })

  it('pause, then resume: bit-exact too', async () => {
    const { service, events } = await openService(data, { workerEnv: { ...process.env, LONGCTX_WORKER_FAULTS: 'delay=100' } })
    const created = await service.create(tinyPlan(data.datasetId), true)
    await waitFor(() => stepsSeen(events, created.id) >= 6, 60_000, 'step 6')
    const pausing = await service.pause(created.id)
    expect(pausing.message).toMatch(/Pausing/)
    const paused = await service.waitForEnd(created.id)
    expect(paused.status).toBe('paused')
    // the pause wrote a checkpoint of the last finished step
    expect(paused.lastCheckpoint).toBe(`step-${String(paused.step).padStart(6, '0')}.safetensors`)
    await service.resume(created.id)
    const end = await service.waitForEnd(created.id)
    expect(end.status, end.message ?? '').toBe('completed')
    expectSameAsReference(await readRun(created.id))
  })

  it('a run left "running" by a dead app is marked interrupted at start, and resumes', async () => {
    const { service, events } = await openService(data, { workerEnv: { ...process.env, LONGCTX_WORKER_FAULTS: 'delay=100' } })
    const created = await service.create(tinyPlan(data.datasetId), true)
    const dir = join(data.runsDir, created.id)
    await waitFor(() => stepsSeen(events, created.id) >= 3, 60_000, 'step 3')
    // The app dies: the worker is gone and state.json still says running, with a supervisor pid
    // that no longer exists.
    const { workerPid } = await readState(dir)
    process.kill(workerPid!, 'SIGKILL')
    await service.waitForEnd(created.id)
    const state = await readState(dir)
    await writeJsonAtomic(runPaths(dir).state, { ...state, status: 'running', message: null, workerPid: 2 ** 22 + 17, supervisorPid: 2 ** 22 + 19 })

    const restarted = await openService(data)
    const listed = (await restarted.service.list()).find((s) => s.id === created.id)!
    expect(listed.status).toBe('interrupted')
    expect(listed.message).toMatch(/stopped while this run was training/)
    await restarted.service.resume(created.id)
    const end = await restarted.service.waitForEnd(created.id)
    expect(end.status, end.message ?? '').toBe('completed')
    expectSameAsReference(await readRun(created.id))
  })
})
