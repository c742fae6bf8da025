// What the CLI commands share: output sinks, option parsers, opening a model and its tokenizer.
import { InvalidArgumentError } from 'commander'
import { ApiError } from '../api/contract.ts'
import { loadTokenizer } from '../core/tokenizer/index.ts'
import { checkModelFolder } from '../engine/inspect.ts'
import { EngineError } from '../engine/errors.ts'
import { EngineModel, type Backend } from '../engine/model.ts'
import { loadNative } from '../engine/native.ts'

export interface CliIO {
  out(text: string): void
  err(text: string): void
}

export function processIO(): CliIO {
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
  }
}

// A failure the user can fix from the command line; printed as `error: <message>`.
export class CliError extends Error {
  readonly exitCode: number
  constructor(message: string, exitCode = 1) {
    super(message)
    this.name = 'CliError'
    this.exitCode = exitCode
  }
}

// ---- option parsers (commander calls them with the raw string) -------------------------------

export function intOption(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value)
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer${max < Number.MAX_SAFE_INTEGER ? ` from ${min} to ${max}` : ` >= ${min}`}`)
    return n
  }
}

export function floatOption(min: number, max = Infinity) {
  return (value: string): number => {
    const n = Number(value)
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected a number${max < Infinity ? ` from ${min} to ${max}` : ` >= ${min}`}`)
    return n
  }
}

export type BackendOption = Backend | 'auto'
export const BACKEND_CHOICES: BackendOption[] = ['auto', 'cpu', 'cuda']

export function setThreads(threads: number | undefined): void {
  if (threads !== undefined) loadNative().setNumThreads(threads)
}

// Loads a model folder. 'auto' takes CUDA when it is compiled in and falls back to the CPU when
// there is no usable device; an explicit 'cuda' fails with the engine's reason instead.
export async function openModel(dir: string, backend: BackendOption = 'auto'): Promise<EngineModel> {
  const abs = await checkModelFolder(dir)
  if (backend === 'auto') {
    if (loadNative().backendsAvailable().includes('cuda')) {
      try {
        return await EngineModel.load(abs, { backend: 'cuda' })
      } catch (e) {
        if (!(e instanceof EngineError && (e.engineCode === 'LCX_ERR_BACKEND' || e.engineCode === 'LCX_ERR_OOM'))) throw e
      }
    }
    backend = 'cpu'
  }
  return EngineModel.load(abs, { backend })
}

// The tokenizer of a model folder; a folder without one is the user's to fix.
export async function openTokenizer(dir: string) {
  try {
    return await loadTokenizer(dir)
  } catch (e) {
    if (e instanceof Error && e.name === 'TokenizerFileError') throw new ApiError('bad_input', e.message)
    throw e
  }
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`
  return String(n)
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let u = 0
  let v = n
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`
}
