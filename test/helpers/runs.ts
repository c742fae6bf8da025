// Tiny staged runs for the tests: the fixture model (n_positions 128, 512 tokens), a slice of the
// bundled corpus imported with its tokenizer into a temp data folder, and plans of a few steps.
import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { RunEvents, RunPlan, RunSummary } from '../../src-main/api/runs.ts'
import { importDataset } from '../../src-main/core/datasets/import.ts'
import { createNativeProbe } from '../../src-main/core/native-probe.ts'
import { RunService, type RunServiceOptions } from '../../src-main/core/runs/service.ts'
import { tempDir } from './temp.ts'

export const root = resolve(import.meta.dirname, '../..')
export const fixtureModel = join(root, 'test/fixtures/tiny-gpt2')
const corpus = join(root, 'resources/corpus/kjv-chapters.jsonl')

export interface RunTestData {
  dir: string
  dataDir: string
  datasetsDir: string
  runsDir: string
  datasetId: string
  cleanup: () => Promise<void>
}

// The first `chapters` chapters of the corpus (Genesis, Exodus, …) as a JSONL dataset.
export async function runTestData(chapters = 90): Promise<RunTestData> {
  const tmp = await tempDir('longctx-runs-')
  const dataDir = join(tmp.path, 'data')
  const datasetsDir = join(dataDir, 'datasets')
  const runsDir = join(dataDir, 'runs')
  await mkdir(runsDir, { recursive: true })
  const lines = readFileSync(corpus, 'utf8').split('\n').filter(Boolean).slice(0, chapters)
  const src = join(tmp.path, 'corpus.jsonl')
  await writeFile(src, lines.join('\n') + '\n')
  const r = await importDataset({ path: src, modelDir: fixtureModel }, { datasetsDir, workers: 1 })
  return { dir: tmp.path, dataDir, datasetsDir, runsDir, datasetId: r.id, cleanup: tmp.cleanup }
}

// 128 -> 256 -> 512 in a handful of steps: seconds on one core.
export function tinyPlan(datasetId: string, over: Partial<RunPlan> = {}): RunPlan {
  const stage = (name: string, context: number, steps: number) => ({
    name,
    context,
    steps,
    tokensPerStep: 2 * context,
    microBatch: 1,
    lr: { peak: 1e-3, warmupSteps: 1, minRatio: 0.1 },
    pLong: 0.6,
    packLong: false,
    recompute: false,
    evalEvery: 3,
    checkpointEvery: 2,
  })
  return {
    schema: 1,
    name: 'tiny test run',
    modelDir: fixtureModel,
    datasetId,
    backend: 'cpu',
    baseContext: 128,
    extendMode: 'tile',
    seed: 7,
    stages: [stage('256', 256, 5), stage('512', 512, 4)],
    optimizer: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1, masterDtype: 'fp32' },
    eval: {
      windows: [128, 256, 512],
      maxWindowsPerLength: 2,
      slidingStride: 64,
      passkey: { lengths: [128, 256], depths: [0, 1], trials: 1 },
    },
    keepCheckpoints: 1,
    ...over,
  }
}

export interface Recorded {
  status: RunSummary[]
  metrics: Array<RunEvents['runs.metrics']>
  evals: Array<RunEvents['runs.eval']>
}

export async function openService(
  data: RunTestData,
  over: Partial<RunServiceOptions> = {},
): Promise<{ service: RunService; events: Recorded }> {
  const events: Recorded = { status: [], metrics: [], evals: [] }
  const service = await RunService.open({
    runsDir: () => data.runsDir,
    datasetsDir: () => data.datasetsDir,
    probe: createNativeProbe(),
    threads: 1,
    emit: (event, payload) => {
      if (event === 'runs.status') events.status.push(payload as RunSummary)
      else if (event === 'runs.metrics') events.metrics.push(payload as RunEvents['runs.metrics'])
      else events.evals.push(payload as RunEvents['runs.eval'])
    },
    ...over,
  })
  return { service, events }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 60_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
