// The datasets service behind the API: preview, background import jobs with progress events and
// cancellation, and the list of imported datasets. Plain TypeScript; the core wires it to the
// contract's datasets.* methods and the 'datasets.progress' event.
import { randomBytes } from 'node:crypto'
import { readdir, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { ApiError } from '../../api/contract.ts'
import type { DatasetImportProgress, DatasetPreview, DatasetSummary } from '../../api/datasets.ts'
import { findTokenizerFiles } from '../tokenizer/index.ts'
import { importDataset, type ImportEnv, type ImportRequest, type ImportResult } from './import.ts'
import { previewDataset, type PreviewRequest } from './preview.ts'
import { contextWarnings } from './stats.ts'
import { resolveSource } from './sources.ts'
import { readManifest, type DatasetManifest } from './store.ts'

export interface DatasetServiceOptions {
  /** The datasets folder; a function because the data folder can move in Settings. */
  datasetsDir: () => string
  emit: (progress: DatasetImportProgress) => void
  /** Extra import settings (tests: a failing writer, pool size…). */
  importEnv?: Partial<Omit<ImportEnv, 'datasetsDir' | 'signal' | 'onProgress'>>
}

interface Job {
  id: string
  controller: AbortController
  done: Promise<ImportResult | null>
  last: DatasetImportProgress
}

export class DatasetService {
  private readonly jobs = new Map<string, Job>()

  constructor(private readonly opts: DatasetServiceOptions) {}

  preview(req: PreviewRequest): Promise<DatasetPreview> {
    return previewDataset(req)
  }

  /**
   * Starts an import in the background; progress (and the end) arrives as events. A missing
   * source or a model folder without a tokenizer is refused at once, before any job exists.
   */
  async startImport(req: ImportRequest): Promise<{ jobId: string }> {
    await resolveSource(resolve(req.path))
    if (!(await findTokenizerFiles(resolve(req.modelDir)).catch(() => null))) {
      throw new ApiError(
        'bad_input',
        `The model folder ${req.modelDir} has no tokenizer (tokenizer.json, or vocab.json + merges.txt); pick the model the dataset is for.`,
      )
    }
    const jobId = randomBytes(6).toString('hex')
    const controller = new AbortController()
    const base: DatasetImportProgress = {
      jobId,
      phase: 'scanning',
      bytesDone: 0,
      bytesTotal: 0,
      documents: 0,
      tokens: 0,
      mbPerSec: 0,
      etaSeconds: null,
      done: false,
    }
    const job: Job = { id: jobId, controller, done: Promise.resolve(null), last: base }
    const send = (p: DatasetImportProgress) => {
      job.last = p
      this.opts.emit(p)
    }
    job.done = (async () => {
      try {
        const result = await importDataset(req, {
          ...this.opts.importEnv,
          datasetsDir: this.opts.datasetsDir(),
          signal: controller.signal,
          onProgress: (p) => {
            // 'done' is sent below, once, with the dataset id.
            if (p.phase !== 'done') send({ ...job.last, ...p, jobId, done: false })
          },
        })
        send({
          ...job.last,
          phase: 'done',
          bytesDone: job.last.bytesTotal,
          documents: result.manifest.stats.total.documents,
          tokens: result.manifest.stats.total.tokens,
          etaSeconds: 0,
          done: true,
          datasetId: result.id,
          cached: result.cached,
        })
        return result
      } catch (err) {
        const cancelled = controller.signal.aborted
        send({
          ...job.last,
          phase: cancelled ? 'cancelled' : 'failed',
          etaSeconds: null,
          done: true,
          error: cancelled
            ? 'The import was cancelled; nothing was kept.'
            : err instanceof Error
              ? err.message
              : String(err),
        })
        return null
      } finally {
        // Keep the finished job a while so a late datasets.cancel gets a clear answer.
        setTimeout(() => this.jobs.delete(jobId), 60_000).unref()
      }
    })()
    this.jobs.set(jobId, job)
    return { jobId }
  }

  /** Cancels a running import; its folder is removed. Resolves when it has stopped. */
  async cancel(jobId: string): Promise<{ cancelled: boolean }> {
    const job = this.jobs.get(jobId)
    if (!job) throw new ApiError('not_found', `There is no import job "${jobId}" (it may have finished long ago).`)
    if (job.last.done) return { cancelled: false }
    job.controller.abort()
    await job.done
    return { cancelled: true }
  }

  /** Waits for a job (tests, CLI). */
  async wait(jobId: string): Promise<ImportResult | null> {
    const job = this.jobs.get(jobId)
    if (!job) throw new ApiError('not_found', `There is no import job "${jobId}".`)
    return job.done
  }

  /** Imported datasets, newest first. Folders without a manifest (unfinished imports) are not datasets. */
  async list(): Promise<DatasetSummary[]> {
    const dir = this.opts.datasetsDir()
    let names: string[]
    try {
      names = await readdir(dir)
    } catch {
      return []
    }
    const out: DatasetSummary[] = []
    for (const name of names) {
      if (name.startsWith('.')) continue
      const manifest = await readManifest(join(dir, name)).catch(() => null)
      if (manifest && manifest.id === name) out.push(await summarize(join(dir, name), manifest))
    }
    return out.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0))
  }

  /** A dataset's summary; with targetContext, the warnings are about teaching that context. */
  async get(id: string, targetContext?: number): Promise<DatasetSummary> {
    const dir = join(this.opts.datasetsDir(), id)
    const manifest = await readManifest(dir).catch(() => null)
    if (!manifest) throw new ApiError('not_found', `There is no imported dataset "${id}". Import it again.`)
    const summary = await summarize(dir, manifest)
    if (targetContext !== undefined) summary.stats = { ...summary.stats, warnings: contextWarnings(summary.stats, targetContext) }
    return summary
  }

  /** Cancels every running import (app shutdown). */
  async dispose(): Promise<void> {
    const running = [...this.jobs.values()].filter((j) => !j.last.done)
    for (const j of running) j.controller.abort()
    await Promise.all(running.map((j) => j.done))
  }
}

export async function summarize(dir: string, m: DatasetManifest): Promise<DatasetSummary> {
  let size = 0
  for (const f of [...m.tokens.shards, m.documents, m.split]) {
    size += await stat(join(dir, f.file)).then((s) => s.size, () => 0)
  }
  return {
    id: m.id,
    name: m.name,
    createdAt: m.createdAt,
    source: {
      path: m.source.path,
      format: m.source.format,
      files: m.source.files,
      bytes: m.source.bytes,
      textFields: m.source.textFields,
    },
    tokenizer: { hash: m.tokenizer.hash, kind: m.tokenizer.kind, vocabSize: m.tokenizer.vocabSize, modelDir: m.tokenizer.modelDir },
    stats: m.stats,
    sizeOnDiskBytes: size,
    importNotes: m.import.notes,
  }
}
