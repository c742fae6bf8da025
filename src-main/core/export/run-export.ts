// One export from start to end: open the source (model folder or checkpoint) on the CPU backend
// (an export only reads the weights; the GPU's memory is better left to training), write the
// chosen format, free the model. The CLI calls this directly; the service runs it as a job.
import { mkdir, readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { ApiError, type ExportCard, type ExportFormat, type ExportResult, type GgufType } from '../../api/contract.ts'
import { openModelSource, type ModelSource } from '../model-source.ts'
import { exportHf } from './export-hf.ts'
import { exportGguf } from './gguf/export-gguf.ts'

export interface RunExportOptions {
  source: ModelSource
  format: ExportFormat
  type?: GgufType // gguf; default f16
  out: string
  name?: string
  card?: ExportCard
  overwrite?: boolean
  maxShardBytes?: number
  onProgress?: (phase: 'loading' | 'writing', fraction: number, detail: string) => void
  signal?: AbortSignal
}

async function isEmptyDir(p: string): Promise<boolean> {
  try {
    return (await readdir(p)).length === 0
  } catch {
    return false
  }
}

// Where the output goes, checked before the (possibly long) model load: a GGUF given an existing
// folder lands inside it; nothing existing is replaced unless `overwrite`.
export async function resolveExportTarget(format: ExportFormat, out: string, fileName: string, overwrite: boolean): Promise<string> {
  let target = path.resolve(out)
  const st = await stat(target).catch(() => null)
  if (format === 'gguf') {
    // An existing folder, or a path written as one ("out/"), receives the file under its default name.
    if (st?.isDirectory() || /[\\/]$/.test(out)) {
      await mkdir(target, { recursive: true })
      target = path.join(target, fileName)
    }
    const existing = await stat(target).catch(() => null)
    if (existing?.isDirectory()) throw new ApiError('bad_input', `${target} is a folder; give a .gguf file name`)
    if (existing && !overwrite) throw new ApiError('busy', `${target} already exists; choose another name or allow overwriting`)
  } else {
    if (st && !st.isDirectory()) throw new ApiError('bad_input', `${target} is a file; the HF export is a folder`)
    if (st && !overwrite && !(await isEmptyDir(target)))
      throw new ApiError('busy', `${target} already exists and is not empty; choose another folder or allow overwriting`)
  }
  await mkdir(path.dirname(target), { recursive: true })
  return target
}

export async function runExport(opts: RunExportOptions): Promise<ExportResult> {
  const started = Date.now()
  const type = opts.type ?? 'f16'
  const baseName = (opts.name ?? defaultName(opts.source)).replace(/[\\/:*?"<>|]/g, '_')
  const target = await resolveExportTarget(opts.format, opts.out, `${baseName}.${type}.gguf`, opts.overwrite ?? false)
  opts.onProgress?.('loading', 0, 'loading the model')
  const opened = await openModelSource(opts.source, 'cpu')
  try {
    if (opts.signal?.aborted) throw opts.signal.reason
    const name = opts.name ?? opened.name
    if (opts.format === 'hf') {
      const r = await exportHf({
        model: opened.model,
        sourceDir: opened.modelDir,
        out: target,
        name,
        baseContext: opened.baseContext,
        checkpoint: opened.checkpoint ? { path: opened.checkpoint.path, step: opened.checkpoint.step } : null,
        card: opts.card,
        maxShardBytes: opts.maxShardBytes,
        signal: opts.signal,
        onProgress: (f, d) => opts.onProgress?.('writing', f, d),
      })
      return {
        format: 'hf',
        path: r.path,
        bytes: r.bytes,
        files: r.files,
        contextLength: opened.model.config.nPositions,
        warnings: [],
        elapsedMs: Date.now() - started,
      }
    }
    const r = await exportGguf({
      model: opened.model,
      tokenizerDir: opened.modelDir,
      out: target,
      type,
      name,
      description: opts.card?.description,
      signal: opts.signal,
      onProgress: (f, d) => opts.onProgress?.('writing', f, d),
    })
    return {
      format: 'gguf',
      path: r.path,
      bytes: r.bytes,
      files: [path.basename(r.path)],
      contextLength: r.contextLength,
      warnings: r.warnings,
      elapsedMs: Date.now() - started,
    }
  } finally {
    opened.model.dispose()
  }
}

function defaultName(source: ModelSource): string {
  return source.kind === 'model' ? path.basename(path.resolve(source.path)) : path.basename(source.checkpoint).replace(/\.safetensors$/, '')
}
