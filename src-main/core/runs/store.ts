// The run folder: everything a run is, on disk, so the UI, the CLI and a restarted app all see the
// same thing.
//
//   <dataDir>/runs/<id>/
//     plan.json         the plan as created (never changed afterwards)
//     state.json        status, stage, step, last checkpoint, message (atomic rewrite)
//     metrics.jsonl     one MetricPoint per optimizer step (append-only)
//     evals.jsonl       one EvalResult per evaluation (append-only)
//     checkpoints/      step-000040.safetensors (the engine's atomic checkpoint: params, AdamW
//                       m/v, step) + step-000040.json (the sidecar: sampler position, stage and
//                       step; written atomically after the engine file, so a checkpoint exists
//                       exactly when its sidecar does)
//     final/            the extended model (HF folder + tokenizer) when the run completed
//     worker.log        the training worker's stdout and stderr
//
// Writers: the supervising process (app or CLI) writes state.json, metrics.jsonl and
// evals.jsonl from the worker's messages; the worker writes checkpoints/ and final/.
import { existsSync } from 'node:fs'
import { appendFile, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { RunStatus } from '../../api/runs.ts'
import type { SamplerState } from '../datasets/sampler.ts'
import { writeFileAtomic } from '../atomic-file.ts'

export const STATE_SCHEMA_VERSION = 1

export interface RunState {
  schema: number
  id: string
  status: RunStatus
  message: string | null
  createdMs: number
  updatedMs: number
  stageIndex: number
  step: number // optimizer steps done, all stages
  backend: 'cpu' | 'cuda' | null
  device: string | null
  lastCheckpoint: string | null // checkpoint file name in checkpoints/
  // Who drives the run while it is 'running': a run is only really running while its worker
  // process is alive (the app marks it interrupted at start otherwise).
  workerPid: number | null
  supervisorPid: number | null
  baselinePpl: Record<string, number> | null
  latestPpl: Record<string, number> | null
}

export interface CheckpointInfo {
  schema: number
  file: string // engine checkpoint, in checkpoints/
  stage: number
  stageStep: number // steps done in this stage
  step: number // steps done, all stages
  stageEnd: boolean
  // The sampler's position after the last step; the sampler is the only random source of the
  // data order (the engine has no dropout), so this plus the engine file resumes bit-exactly.
  sampler: SamplerState
  trainMs: number // training time so far, all stages (for tokens/s and ETA after a resume)
  timeMs: number
  bytes: number
}

export function runPaths(dir: string) {
  return {
    dir,
    plan: join(dir, 'plan.json'),
    state: join(dir, 'state.json'),
    metrics: join(dir, 'metrics.jsonl'),
    evals: join(dir, 'evals.jsonl'),
    checkpoints: join(dir, 'checkpoints'),
    final: join(dir, 'final'),
    log: join(dir, 'worker.log'),
  }
}

export function checkpointBaseName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`
}

export async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n')
}

export async function readState(dir: string): Promise<RunState> {
  return readJson<RunState>(runPaths(dir).state)
}

export async function appendJsonl(path: string, values: unknown[]): Promise<void> {
  if (values.length === 0) return
  await appendFile(path, values.map((v) => JSON.stringify(v)).join('\n') + '\n')
}

// Lines that parse; a last line cut short by a crash mid-append is skipped.
export async function readJsonl<T>(path: string): Promise<T[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const out: T[] = []
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    try {
      out.push(JSON.parse(line) as T)
    } catch {
      // a torn line from a crash: everything after the last checkpoint is redone anyway
    }
  }
  return out
}

// Keeps the records `keep` accepts (a resume drops what happened after its checkpoint, since
// those steps are trained again).
export async function filterJsonl<T>(path: string, keep: (v: T) => boolean): Promise<void> {
  if (!existsSync(path)) return
  const all = await readJsonl<T>(path)
  const kept = all.filter(keep)
  await writeFileAtomic(path, kept.map((v) => JSON.stringify(v) + '\n').join(''))
}

// Complete checkpoints (sidecar and engine file both there), oldest first.
export async function listCheckpoints(dir: string): Promise<CheckpointInfo[]> {
  const folder = runPaths(dir).checkpoints
  let names: string[]
  try {
    names = await readdir(folder)
  } catch {
    return []
  }
  const out: CheckpointInfo[] = []
  for (const name of names) {
    if (!/^step-\d+\.json$/.test(name)) continue
    try {
      const info = await readJson<CheckpointInfo>(join(folder, name))
      if (existsSync(join(folder, info.file))) out.push(info)
    } catch {
      // not a complete sidecar: not a checkpoint
    }
  }
  return out.sort((a, b) => a.step - b.step)
}

export async function latestCheckpoint(dir: string): Promise<CheckpointInfo | null> {
  const all = await listCheckpoints(dir)
  return all.length ? all[all.length - 1]! : null
}

// The sidecar goes first, so a checkpoint half-removed is already not a checkpoint.
export async function removeCheckpoint(dir: string, info: CheckpointInfo): Promise<void> {
  const folder = runPaths(dir).checkpoints
  await rm(join(folder, info.file.replace(/\.safetensors$/, '.json')), { force: true })
  await rm(join(folder, info.file), { force: true })
}

// Keeps the last `keep` interval checkpoints and every stage-end one; returns the removed files.
export async function pruneCheckpoints(dir: string, keep: number): Promise<string[]> {
  const interval = (await listCheckpoints(dir)).filter((c) => !c.stageEnd)
  const drop = interval.slice(0, Math.max(0, interval.length - keep))
  for (const c of drop) await removeCheckpoint(dir, c)
  return drop.map((c) => c.file)
}

// Leftovers of a save cut short (a full disk, a kill): temp files beside the checkpoints, and
// engine files whose sidecar never got written.
export async function removePartialCheckpoints(dir: string): Promise<void> {
  const folder = runPaths(dir).checkpoints
  let names: string[]
  try {
    names = await readdir(folder)
  } catch {
    return
  }
  const complete = new Set((await listCheckpoints(dir)).flatMap((c) => [c.file, c.file.replace(/\.safetensors$/, '.json')]))
  for (const name of names) if (!complete.has(name)) await rm(join(folder, name), { force: true, recursive: true })
}

export async function fileBytes(path: string): Promise<number> {
  return stat(path).then((s) => s.size, () => 0)
}

export async function ensureRunFolders(dir: string): Promise<void> {
  await mkdir(runPaths(dir).checkpoints, { recursive: true })
}
