// Failures stop a run cleanly with a message that says what to change: NaN loss (caught within
// the step, before the optimizer touches the weights), out of memory, a full disk (the partial
// checkpoint removed, resumable once space is back), a missing dataset (resumable once
// re-imported); and the plan checks refuse what cannot run.
import { existsSync } from 'node:fs'
import { readdir, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiError } from '../../src-main/api/errors.ts'
import type { MetricPoint } from '../../src-main/api/runs.ts'
import { listCheckpoints, readState, runPaths } from '../../src-main/core/runs/store.ts'
import { openService, runTestData, tinyPlan, type RunTestData } from '../helpers/runs.ts'

let data: RunTestData
beforeAll(async () => {
  data = await runTestData()
})
afterAll(() => data?.cleanup())

async function failWith(faults: string) {
  const { service } = await openService(data, { workerEnv: { ...process.env, LONGCTX_WORKER_FAULTS: faults } })
  const created = await service.create(tinyPlan(data.datasetId), true)
  const end = await service.waitForEnd(created.id)
  return { service, end, dir: join(data.runsDir, created.id) }
}

async function metricsOf(dir: string): Promise<MetricPoint[]> {
  const text = (await readFile(runPaths(dir).metrics, 'utf8')).trim()
  return text ? text.split('\n').map((l) => JSON.parse(l) as MetricPoint) : []
}

describe('run failures', () => {
  it('NaN loss: detected in the step it happens, the run fails saying to lower the learning rate', async () => {
    const { end, dir } = await failWith('nan@3')
    expect(end.status).toBe('failed')
    expect(end.message).toMatch(/loss became NaN at step 3/)
    expect(end.message).toMatch(/Lower the learning rate/)
    // steps 1 and 2 are recorded, step 3 never is: nothing NaN reaches the charts or the weights
    expect((await metricsOf(dir)).map((p) => p.step)).toEqual([1, 2])
    expect((await readState(dir)).status).toBe('failed')
  })

  it('out of memory: says to lower the micro-batch or turn on recompute', async () => {
    const { end } = await failWith('oom@2')
    expect(end.status).toBe('failed')
    expect(end.message).toMatch(/Out of memory at step 2 \(stage 256\) \(micro-batch 1, recompute off, 256 tokens\)/)
    expect(end.message).toMatch(/Lower the micro-batch .* or turn on activation recompute/)
  })

  it('disk full while checkpointing: the partial checkpoint is removed, and resume works once space is back', async () => {
    const { service, end, dir } = await failWith('enospc@4')
    expect(end.status).toBe('failed')
    expect(end.message).toMatch(/The disk is full at step 4/)
    expect(end.message).toMatch(/partial checkpoint was removed; free some space/)
    const files = await readdir(runPaths(dir).checkpoints)
    expect(files.sort()).toEqual(['step-000002.json', 'step-000002.safetensors'])
    expect((await listCheckpoints(dir)).map((c) => c.step)).toEqual([2])
    // space is back (no fault in this service): the run resumes from step 2 and completes
    const fresh = await openService(data)
    const resumed = await fresh.service.resume(end.id)
    expect(resumed.step).toBe(2)
    const done = await fresh.service.waitForEnd(end.id)
    expect(done.status, done.message ?? '').toBe('completed')
    void service
  })

  it('dataset missing: says to re-import it, and resumes once it is back', async () => {
    const { service } = await openService(data)
    const created = await service.create(tinyPlan(data.datasetId), false)
    expect(created.status).toBe('created')
    const datasetDir = join(data.datasetsDir, data.datasetId)
    const aside = `${datasetDir}-aside`
    await rename(datasetDir, aside)
    try {
      await service.resume(created.id)
      const end = await service.waitForEnd(created.id)
      expect(end.status).toBe('failed')
      expect(end.message).toMatch(new RegExp(`The dataset ${data.datasetId} is missing`))
      expect(end.message).toMatch(/Re-import it .* then resume the run/)
    } finally {
      await rename(aside, datasetDir)
    }
    await service.resume(created.id)
    const end = await service.waitForEnd(created.id)
    expect(end.status, end.message ?? '').toBe('completed')
  })

  it('refuses plans that cannot run, before any worker starts', async () => {
    const { service } = await openService(data)
    const err = async (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as ApiError)
    const wrongBase = await err(service.create(tinyPlan(data.datasetId, { baseContext: 256, stages: tinyPlan(data.datasetId).stages }), true))
    expect(wrongBase?.code).toBe('invalid_argument')
    expect(wrongBase?.message).toMatch(/base context \(256\) is not the model's context \(128\)/)
    const noData = await err(service.create(tinyPlan('0123456789abcdef'), true))
    expect(noData?.code).toBe('not_found')
    expect(noData?.message).toMatch(/no imported dataset "0123456789abcdef"/)
    const tooLong = await err(service.create(tinyPlan(data.datasetId, { eval: { ...tinyPlan(data.datasetId).eval, windows: [128, 1024] } }), true))
    expect(tooLong?.message).toMatch(/1024 .* longer than the target context \(512\)/)
    expect(existsSync(data.runsDir) ? (await readdir(data.runsDir)).length : 0).toBeGreaterThanOrEqual(0)
  })

  it('stop is final; a stopped run cannot be resumed', async () => {
    const { service } = await openService(data)
    const created = await service.create(tinyPlan(data.datasetId), false)
    const stopped = await service.stop(created.id)
    expect(stopped.status).toBe('stopped')
    await expect(service.resume(created.id)).rejects.toThrow(/stop is final/)
  })
})
