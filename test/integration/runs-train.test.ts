// A real staged run of the fixture model end to end, through the RunService and a forked worker:
// state transitions, metrics file, evaluations (baseline included), checkpoint retention, the
// final model, and the events a UI re-attaching would get.
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { EvalResult, MetricPoint } from '../../src-main/api/runs.ts'
import { learningRateAt } from '../../src-main/core/runs/schedule.ts'
import { listCheckpoints, readState, runPaths } from '../../src-main/core/runs/store.ts'
import { EngineModel } from '../../src-main/engine/model.ts'
import { openService, runTestData, tinyPlan, type RunTestData } from '../helpers/runs.ts'

let data: RunTestData
beforeAll(async () => {
  data = await runTestData()
})
afterAll(() => data?.cleanup())

describe('a staged run', () => {
  it('trains 128 -> 256 -> 512, writes the run folder and ends completed', async () => {
    const { service, events } = await openService(data)
    const plan = tinyPlan(data.datasetId)
    const created = await service.create(plan, true)
    expect(created.status).toBe('running')
    expect(created.totalSteps).toBe(9)
    const end = await service.waitForEnd(created.id)
    expect(end.status, end.message ?? '').toBe('completed')
    expect(end.step).toBe(9)

    const dir = join(data.runsDir, created.id)
    const paths = runPaths(dir)
    const state = await readState(dir)
    expect(state).toMatchObject({ status: 'completed', step: 9, stageIndex: 1, backend: 'cpu', workerPid: null })

    // metrics.jsonl: one point per step, in order, with the LR schedule of each stage
    const points = (await readFile(paths.metrics, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as MetricPoint)
    expect(points.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(points.map((p) => p.stage)).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1])
    for (const p of points) {
      const s = plan.stages[p.stage]!
      expect(p.lr).toBeCloseTo(learningRateAt(s.lr, s.steps, p.stageStep), 12)
      expect(Number.isFinite(p.loss) && p.loss > 0).toBe(true)
      expect(p.gradNorm).toBeGreaterThan(0)
      expect(p.tokensPerSec).toBeGreaterThan(0)
      expect(p.engineAllocatedBytes).toBeGreaterThan(0)
      expect(p.deviceUsedBytes).toBeNull() // CPU backend
      expect(p.longFracExamples).toBeGreaterThanOrEqual(0)
      expect(p.longFracExamples).toBeLessThanOrEqual(1)
    }

    // evals.jsonl: the baseline at every window (the longer ones on the tiled model), an interval
    // evaluation at step 3 of stage 0, each stage's end; windows beyond the stage are skipped
    const evals = (await readFile(paths.evals, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as EvalResult)
    expect(evals.map((e) => [e.label, e.stage, e.step])).toEqual([
      ['baseline', -1, 0],
      ['interval', 0, 3],
      ['stage-end', 0, 5],
      ['interval', 1, 8],
      ['stage-end', 1, 9],
    ])
    expect(evals[0]!.windows.map((w) => w.length)).toEqual([128, 256, 512])
    expect(evals[1]!.windows.map((w) => w.length)).toEqual([128, 256])
    expect(evals[4]!.windows.map((w) => w.length)).toEqual([128, 256, 512])
    for (const e of evals) {
      for (const w of e.windows) {
        expect(w.ppl).toBeCloseTo(Math.exp(w.nll), 6)
        // maxWindowsPerLength 2: two 512-token spans, cut into 512 / length windows each
        expect(w.predictions).toBe(2 * (512 / w.length) * (w.length - 1))
      }
      expect(e.sliding?.length).toBeGreaterThan(0)
      // passkey cells: lengths 128 and 256 (those within the context) x depths 0 and 1
      expect(e.passkey?.map((c) => [c.length, c.depth])).toEqual([[128, 0], [128, 1], [256, 0], [256, 1]])
      expect(e.passkey?.every((c) => c.trials === 1 && c.accuracy >= 0 && c.accuracy <= 1)).toBe(true)
    }
    expect(end.baselinePpl?.['512']).toBeCloseTo(evals[0]!.windows[2]!.ppl, 10)
    expect(end.latestPpl?.['512']).toBeCloseTo(evals[4]!.windows[2]!.ppl, 10)

    // checkpoints: every stage end, plus the last keepCheckpoints (1) interval one; interval
    // ones were written at steps 2 and 4 (stage 0) and 7 (stage 1, its step 2)
    const ckpts = await listCheckpoints(dir)
    expect(ckpts.map((c) => [c.step, c.stageEnd])).toEqual([
      [5, true],
      [7, false],
      [9, true],
    ])
    const files = await readdir(paths.checkpoints)
    expect(files.sort()).toEqual(['step-000005.json', 'step-000005.safetensors', 'step-000007.json', 'step-000007.safetensors', 'step-000009.json', 'step-000009.safetensors'])

    // worker.log says what happened
    const log = await readFile(paths.log, 'utf8')
    expect(log).toMatch(/starting on CPU/)
    expect(log).toMatch(/checkpoint step-000009.safetensors \(step 9, stage end\)/)
    expect(log).toMatch(/finished: completed/)

    // the final model is the last checkpoint's weights, with 512 positions
    expect(existsSync(join(paths.final, 'tokenizer.json'))).toBe(true)
    const final = await EngineModel.load(paths.final)
    expect(final.config.nPositions).toBe(512)
    final.dispose()

    // what a UI gets: status events through to completed, metrics and evals as they happened
    expect(events.status.map((s) => s.status)).toContain('running')
    expect(events.status[events.status.length - 1]!.status).toBe('completed')
    expect(events.metrics.flatMap((m) => m.points.map((p) => p.step))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(events.evals.map((e) => e.result.label)).toEqual(['baseline', 'interval', 'stage-end', 'interval', 'stage-end'])

    // and re-attaching later: list + get give the same numbers from disk
    const again = await openService(data)
    const listed = await again.service.list()
    expect(listed.map((s) => [s.id, s.status])).toEqual([[created.id, 'completed']])
    const detail = await again.service.get(created.id, 2000)
    expect(detail.metrics).toEqual(points)
    expect(detail.evals).toEqual(evals)
    expect(detail.checkpoints.map((c) => c.step)).toEqual([5, 7, 9])
    expect(detail.plan).toEqual(plan)
  })
})
