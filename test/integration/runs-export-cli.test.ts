// `longctx export RUN_ID` as a user runs it (bin/longctx.js in a child process, on the data folder
// the app uses): a tiny completed run exported to an HF folder and a GGUF file, and the run's
// summary pointing at what gets exported (final/, else the latest checkpoint, absolute paths).
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, readdir, rm } from 'node:fs/promises'
import { isAbsolute, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunSummary } from '../../src-main/api/runs.ts'
import { resolveExportSource } from '../../src-main/core/export/source.ts'
import { registerRunExportResolver } from '../../src-main/core/runs/export-source.ts'
import type { RunService } from '../../src-main/core/runs/service.ts'
import { EngineModel } from '../../src-main/engine/model.ts'
import { bytesEqual } from '../helpers/engine.ts'
import { fixtureModel, openService, root, runTestData, tinyPlan, type RunTestData } from '../helpers/runs.ts'

const bin = join(root, 'bin/longctx.js')
let data: RunTestData
let service: RunService
let done: RunSummary

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: root,
      env: {
        ...process.env,
        LONGCTX_DEBUG: '',
        LONGCTX_DATA_DIR: data.dataDir,
        LONGCTX_CONFIG_DIR: join(data.dir, 'config'),
        LONGCTX_THREADS: '1',
      },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

beforeAll(async () => {
  data = await runTestData(40)
  ;({ service } = await openService(data))
  // 128 -> 256 -> 512 in 2 + 2 steps, evaluations and passkey kept minimal: a few seconds.
  const plan = tinyPlan(data.datasetId, { name: 'export me' })
  plan.stages = plan.stages.map((s) => ({ ...s, steps: 2, evalEvery: 0, checkpointEvery: 0 }))
  plan.eval = { ...plan.eval, passkey: null, slidingStride: null }
  const created = await service.create(plan, true)
  done = await service.waitForEnd(created.id)
}, 120_000)

afterAll(async () => {
  await service?.dispose()
  await data?.cleanup()
})

describe('runs as export sources', () => {
  it('a completed run points at its final/ folder; the summary keeps the checkpoint file name', async () => {
    expect(done.status, done.message ?? '').toBe('completed')
    expect(done.modelSource).toEqual({ kind: 'model', path: join(data.runsDir, done.id, 'final') })
    expect(done.lastCheckpoint).toMatch(/^step-\d+\.safetensors$/)
    const listed = (await service.list()).find((r) => r.id === done.id)
    expect(listed?.modelSource).toEqual(done.modelSource)
  })

  it('longctx export RUN_ID writes an HF folder (the final weights) and a GGUF', async () => {
    const hf = join(data.dir, 'out-hf')
    const r1 = await cli('export', done.id, '--format', 'hf', '--out', hf)
    expect(r1.code, r1.stderr).toBe(0)
    expect(r1.stdout).toMatch(/context 512 tokens/)
    expect((await readdir(hf)).sort()).toEqual(expect.arrayContaining(['config.json', 'README.md']))
    expect(JSON.parse(await readFile(join(hf, 'config.json'), 'utf8')).n_positions).toBe(512)
    const exported = await EngineModel.load(hf)
    const final = await EngineModel.load(join(data.runsDir, done.id, 'final'))
    try {
      expect(bytesEqual(await exported.getParams(), await final.getParams())).toBe(true)
    } finally {
      exported.dispose()
      final.dispose()
    }

    const gguf = join(data.dir, 'run.f16.gguf')
    const r2 = await cli('export', done.id, '--format', 'gguf', '--type', 'f16', '--out', gguf)
    expect(r2.code, r2.stderr).toBe(0)
    expect(r2.stdout).toMatch(/context 512 tokens/)
    const head = await readFile(gguf)
    expect(head.subarray(0, 4).toString('latin1')).toBe('GGUF')
    expect(head.includes(Buffer.from('gpt2.context_length'))).toBe(true)
  }, 120_000)

  it('without final/ the run resolves to its latest checkpoint; a run with neither is refused', async () => {
    const unregister = registerRunExportResolver(() => data.runsDir)
    try {
      await rm(join(data.runsDir, done.id, 'final'), { recursive: true })
      const summary = (await service.list()).find((r) => r.id === done.id)!
      const src = summary.modelSource
      expect(src?.kind).toBe('checkpoint')
      if (src?.kind !== 'checkpoint') return
      expect(src.modelDir).toBe(fixtureModel)
      expect(src.checkpoint).toBe(join(data.runsDir, done.id, 'checkpoints', summary.lastCheckpoint!))
      expect(isAbsolute(src.checkpoint) && existsSync(src.checkpoint)).toBe(true)
      // by id and by run folder path
      expect(await resolveExportSource(done.id)).toEqual(src)
      expect(await resolveExportSource(join(data.runsDir, done.id))).toEqual(src)

      const idle = await service.create(tinyPlan(data.datasetId, { name: 'not started' }), false)
      expect(idle.modelSource).toBeNull()
      await expect(resolveExportSource(idle.id)).rejects.toThrow(/has no checkpoint yet/)
      const r = await cli('export', idle.id, '--format', 'gguf', '--out', join(data.dir, 'x.gguf'))
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/^error: Run ".*" has no checkpoint yet/)
    } finally {
      unregister()
    }
  }, 60_000)
})
