// `longctx plan / train / runs / eval`, run as a user runs them (bin/longctx.js in a child
// process) on the data folder the app uses (LONGCTX_DATA_DIR), with the fixture model.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runPlanSchema, type EvalResult, type RunPlan, type RunSummary } from '../../src-main/api/runs.ts'
import { readState } from '../../src-main/core/runs/store.ts'
import { fixtureModel, openService, root, runTestData, waitFor, type RunTestData } from '../helpers/runs.ts'

const bin = join(root, 'bin/longctx.js')
let data: RunTestData

interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

function start(args: string[], extraEnv: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: root,
    env: {
      ...process.env,
      LONGCTX_DEBUG: '',
      LONGCTX_DATA_DIR: data.dataDir,
      LONGCTX_CONFIG_DIR: join(data.dir, 'config'),
      LONGCTX_THREADS: '1',
      ...extraEnv,
    },
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
  return { child, done }
}

const cli = (...args: string[]) => start(args).done

async function shortPlan(file: string, over: (p: RunPlan) => void = () => undefined): Promise<RunPlan> {
  const plan = runPlanSchema.parse(JSON.parse(await readFile(file, 'utf8')))
  plan.stages = plan.stages.map((s) => ({ ...s, steps: 3, tokensPerStep: 2 * s.context, microBatch: 1, lr: { ...s.lr, warmupSteps: 1 }, evalEvery: 2, checkpointEvery: 2 }))
  plan.eval = { ...plan.eval, maxWindowsPerLength: 2, passkey: plan.eval.passkey ? { ...plan.eval.passkey, trials: 1, depths: [0, 1] } : null }
  over(plan)
  await writeFile(file, JSON.stringify(plan, null, 2))
  return plan
}

beforeAll(async () => {
  data = await runTestData()
})
afterAll(() => data?.cleanup())

describe('longctx plan / train / runs / eval', () => {
  let runId = ''
  let planFile = ''

  it('plan: writes a valid default plan 128 -> 256 -> 512 with the memory estimate on stderr', async () => {
    planFile = join(data.dir, 'plan.json')
    const r = await cli('plan', fixtureModel, data.datasetId, '--target', '512', '--out', planFile)
    expect(r.code, r.stderr).toBe(0)
    const plan = runPlanSchema.parse(JSON.parse(await readFile(planFile, 'utf8')))
    expect(plan.stages.map((s) => s.context)).toEqual([256, 512])
    expect(plan.baseContext).toBe(128)
    expect(plan.datasetId).toBe(data.datasetId)
    expect(r.stderr).toMatch(/memory on CPU \(RAM\)/)
    expect(r.stderr).toMatch(/256 .* fits/)
    // to stdout without --out; a path instead of an id imports (here: already imported, instant)
    const again = await cli('plan', fixtureModel, join(data.dir, 'corpus.jsonl'), '--target', '512')
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout)).toEqual(plan)
    expect(again.stderr).toMatch(/already imported/)
  })

  it('plan: clean errors for a bad target or dataset', async () => {
    const low = await cli('plan', fixtureModel, data.datasetId, '--target', '128')
    expect(low.code).toBe(1)
    expect(low.stderr).toMatch(/^error: .*must be longer than the model's context \(128\)/)
    const missing = await cli('plan', fixtureModel, 'no-such-thing')
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/^error: no-such-thing is neither an imported dataset id nor a file or folder/)
  })

  it('train: runs the plan headless into the run folder the app shows, with progress and the final table', async () => {
    await shortPlan(planFile)
    const r = await cli('train', planFile)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/^run (\S+) \(/)
    runId = /^run (\S+) \(/.exec(r.stderr)![1]!
    expect(r.stderr).toMatch(/eval \(baseline\): perplexity 128: [\d.]+, 256: [\d.]+, 512: [\d.]+/)
    expect(r.stderr).toMatch(/\[512 2\/2\] step 6\/6 loss [\d.]+/)
    expect(r.stderr).toMatch(/perplexity per window \(held-out\):\n\s+window\s+baseline\s+latest\s+change\n\s+128 /)
    expect(r.stderr).toMatch(/completed: the extended model is in .*final/)
    expect((await readState(join(data.runsDir, runId))).status).toBe('completed')
  })

  it('runs: lists it, as a table and as JSON', async () => {
    const table = await cli('runs')
    expect(table.code, table.stderr).toBe(0)
    expect(table.stdout).toMatch(/^ID\s+STATUS\s+STAGE\s+STEP\s+CONTEXT\s+PPL@TARGET\s+UPDATED/)
    expect(table.stdout).toContain(`${runId}  completed  2/2    6/6   128 -> 512`)
    const json = await cli('runs', '--json')
    const list = JSON.parse(json.stdout) as RunSummary[]
    expect(list.map((s) => [s.id, s.status, s.step])).toEqual([[runId, 'completed', 6]])
  })

  it('eval: a run gives the perplexities its final evaluation recorded; a model folder needs --dataset', async () => {
    // the run's lengths and cap: the same held-out spans as its evaluations
    const r = await cli('eval', runId, '--windows', '128,256,512', '--max-windows', '2', '--json')
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as { windows: Array<{ length: number; ppl: number }>; skipped: Array<{ length: number; reason: string }> }
    const evals = (await readFile(join(data.runsDir, runId, 'evals.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as EvalResult)
    const last = evals[evals.length - 1]!
    expect(last.label).toBe('stage-end')
    expect(out.windows.map((w) => w.length)).toEqual([128, 256, 512])
    out.windows.forEach((w, i) => expect(w.ppl).toBeCloseTo(last.windows[i]!.ppl, 3))
    expect(out.skipped).toEqual([])
    const longer = JSON.parse((await cli('eval', runId, '--windows', '512,1024', '--max-windows', '1', '--json')).stdout)
    expect(longer.skipped).toEqual([{ length: 1024, reason: "longer than the model's context (512)" }])

    const text = await cli('eval', runId, '--windows', '128,512', '--max-windows', '2')
    expect(text.stdout).toMatch(/window\s+predictions\s+perplexity\n\s+128\s+1016\s+[\d.]+\n\s+512\s+1022\s+[\d.]+/)

    const noData = await cli('eval', fixtureModel, '--windows', '128')
    expect(noData.code).toBe(1)
    expect(noData.stderr).toMatch(/^error: give --dataset ID/)
    const model = await cli('eval', fixtureModel, '--windows', '128,256', '--dataset', data.datasetId, '--json')
    expect(model.code, model.stderr).toBe(0)
    expect(JSON.parse(model.stdout).skipped).toEqual([{ length: 256, reason: "longer than the model's context (128)" }])
  })

  it('train: Ctrl-C pauses with a checkpoint; --resume finishes the run', async () => {
    await shortPlan(planFile, (p) => (p.name = 'ctrl-c run'))
    const before = new Set(existsSync(data.runsDir) ? await readdir(data.runsDir) : [])
    const { child, done } = start(['train', planFile], { LONGCTX_WORKER_FAULTS: 'delay=300' })
    let id = ''
    await waitFor(
      async () => {
        const fresh = (await readdir(data.runsDir)).filter((n) => !before.has(n))
        if (fresh.length === 0) return false
        id = fresh[0]!
        const st = await readState(join(data.runsDir, id)).catch(() => null)
        return (st?.step ?? 0) >= 1
      },
      60_000,
      'the first step',
    )
    // The app started meanwhile sees the run as running (its worker and supervisor are alive),
    // does not mark it interrupted, and leaves its control to the terminal.
    const app = await openService(data)
    expect((await app.service.list()).find((s) => s.id === id)?.status).toBe('running')
    await expect(app.service.pause(id)).rejects.toThrow(/driven by another process .* pause it there \(Ctrl-C\)/)
    child.kill('SIGINT')
    const r = await done
    expect(r.code, r.stderr).toBe(130)
    expect(r.stderr).toMatch(/pausing: finishing the current step and writing a checkpoint/)
    expect(r.stderr).toMatch(new RegExp(`error: run ${id} paused at step \\d+; resume with: longctx train --resume ${id}`))
    const paused = await readState(join(data.runsDir, id))
    expect(paused.status).toBe('paused')
    expect(paused.lastCheckpoint).toMatch(/^step-\d+\.safetensors$/)

    const resumed = await cli('train', '--resume', id)
    expect(resumed.code, resumed.stderr).toBe(0)
    expect((await readState(join(data.runsDir, id))).status).toBe('completed')
  })
})
