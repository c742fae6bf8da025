// Export jobs for the API: each export runs in the background and reports 'export.progress'
// (throttled to a few per second, plus the final one with done: true). Jobs are kept in memory
// for the session so a reloaded UI can show what finished.
import { randomUUID } from 'node:crypto'
import type { ExportJob, ExportProgress, ParsedArgsOf } from '../../api/contract.ts'
import { asApiError } from '../api-errors.ts'
import { runExport } from './run-export.ts'

const PROGRESS_INTERVAL_MS = 200
const KEEP_FINISHED = 20

export interface ExportServiceOptions {
  emit: (progress: ExportProgress) => void
}

export class ExportService {
  private readonly jobs = new Map<string, { job: ExportJob; abort: AbortController; finished: Promise<void> }>()

  constructor(private readonly opts: ExportServiceOptions) {}

  start(args: ParsedArgsOf<'export.start'>): { jobId: string } {
    const jobId = randomUUID()
    const abort = new AbortController()
    const job: ExportJob = {
      jobId,
      source: args.source,
      format: args.format,
      type: args.format === 'gguf' ? args.type : null,
      out: args.out,
      startedAt: new Date().toISOString(),
      progress: { jobId, format: args.format, phase: 'loading', fraction: 0, detail: 'starting', done: false },
    }
    let lastEmit = 0
    const report = (p: ExportProgress, force = false) => {
      job.progress = p
      const now = Date.now()
      if (force || now - lastEmit >= PROGRESS_INTERVAL_MS) {
        lastEmit = now
        this.opts.emit(p)
      }
    }
    const finished = (async () => {
      try {
        const result = await runExport({
          source: args.source,
          format: args.format,
          type: args.type,
          out: args.out,
          name: args.name,
          card: args.card,
          overwrite: args.overwrite,
          maxShardBytes: args.maxShardBytes,
          signal: abort.signal,
          onProgress: (phase, fraction, detail) => report({ jobId, format: args.format, phase, fraction, detail, done: false }),
        })
        report({ jobId, format: args.format, phase: 'done', fraction: 1, detail: `wrote ${result.path}`, done: true, result }, true)
      } catch (e) {
        if (abort.signal.aborted)
          report({ jobId, format: args.format, phase: 'cancelled', fraction: job.progress.fraction, detail: 'cancelled', done: true }, true)
        else {
          const err = asApiError(e)
          report({ jobId, format: args.format, phase: 'failed', fraction: job.progress.fraction, detail: err.message, done: true, error: err.toBody() }, true)
        }
      } finally {
        this.prune()
      }
    })()
    this.jobs.set(jobId, { job, abort, finished })
    report(job.progress, true)
    return { jobId }
  }

  cancel(jobId: string): { cancelled: boolean } {
    const entry = this.jobs.get(jobId)
    if (!entry || entry.job.progress.done) return { cancelled: false }
    entry.abort.abort(new Error('the export was cancelled'))
    return { cancelled: true }
  }

  list(): ExportJob[] {
    return [...this.jobs.values()].map((e) => e.job)
  }

  // Waits for a job (tests, CLI-like callers).
  async wait(jobId: string): Promise<ExportJob | null> {
    const entry = this.jobs.get(jobId)
    if (!entry) return null
    await entry.finished
    return entry.job
  }

  private prune(): void {
    const done = [...this.jobs.values()].filter((e) => e.job.progress.done)
    for (const e of done.slice(0, Math.max(0, done.length - KEEP_FINISHED))) this.jobs.delete(e.job.jobId)
  }

  async dispose(): Promise<void> {
    for (const e of this.jobs.values()) if (!e.job.progress.done) e.abort.abort(new Error('the app is closing'))
    await Promise.all([...this.jobs.values()].map((e) => e.finished))
  }
}
