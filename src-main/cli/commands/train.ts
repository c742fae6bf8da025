// `longctx train plan.json`: runs a plan headless, in the same run folder the app shows (the app
// lists it as running while this command drives it), with a progress display on stderr.
// `longctx train --resume RUN_ID` continues a paused or interrupted run from its last checkpoint.
// Ctrl-C pauses: the current step finishes and a checkpoint is written (a second Ctrl-C leaves
// at once; the worker still saves its checkpoint on its own).
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Command } from 'commander'
import { runPlanSchema, type EvalResult, type MetricPoint, type RunPlan, type RunSummary } from '../../api/runs.ts'
import { CliError, intOption, type CliIO } from '../common.ts'
import { dataFolders, formatDuration, openRunService, pplCell } from '../run-service.ts'

interface TrainOptions {
  resume?: string
  threads?: number
}

export const EXIT_PAUSED = 130

async function readPlan(file: string): Promise<RunPlan> {
  let raw: unknown
  try {
    raw = JSON.parse(await readFile(file, 'utf8'))
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new CliError(`${resolve(file)}: no such file`)
    throw new CliError(`${resolve(file)} is not a JSON plan (${(e as Error).message})`)
  }
  const parsed = runPlanSchema.safeParse(raw)
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(plan)'}: ${i.message}`).join('\n')
    throw new CliError(`${resolve(file)} is not a valid plan:\n${issues}`)
  }
  return parsed.data
}

// The progress display: one line redrawn in place on a terminal; otherwise a line every ~10 s
// and at every evaluation, so logs stay readable.
class Progress {
  private plan: RunPlan | null = null
  private drawn = false
  private lastLine = 0
  private recentMs: number[] = []
  constructor(
    private readonly io: CliIO,
    private readonly tty: boolean,
  ) {}

  setPlan(plan: RunPlan): void {
    this.plan = plan
  }

  private write(line: string, persistent: boolean): void {
    if (this.tty) {
      this.io.err(`\r${line}\x1b[K${persistent ? '\n' : ''}`)
      this.drawn = !persistent
    } else {
      this.io.err(`${line}\n`)
    }
  }

  note(text: string): void {
    if (this.drawn) this.io.err('\n')
    this.drawn = false
    this.io.err(`${text}\n`)
  }

  metrics(points: MetricPoint[]): void {
    const plan = this.plan
    const p = points[points.length - 1]
    if (!plan || !p) return
    for (const q of points) this.recentMs.push(q.stepMs)
    this.recentMs = this.recentMs.slice(-20)
    const total = plan.stages.reduce((a, s) => a + s.steps, 0)
    const avg = this.recentMs.reduce((a, b) => a + b, 0) / this.recentMs.length
    const stage = plan.stages[p.stage]!
    const line =
      `[${stage.name} ${p.stage + 1}/${plan.stages.length}] step ${p.step}/${total} ` +
      `loss ${p.loss.toFixed(3)} lr ${p.lr.toExponential(1)} gnorm ${p.gradNorm.toFixed(2)} ` +
      `${Math.round(p.tokensPerSec)} tok/s  ETA ${formatDuration(((total - p.step) * avg) / 1000)}`
    const now = Date.now()
    if (this.tty || now - this.lastLine > 10_000 || p.stageStep === stage.steps) {
      this.lastLine = now
      this.write(line, false)
    }
  }

  evaluation(e: EvalResult): void {
    const ppl = e.windows.map((w) => `${w.length}: ${pplCell(w.ppl)}`).join(', ')
    const pk = e.passkey?.length
      ? `  passkey ${e.passkey.reduce((a, c) => a + c.accuracy * c.trials, 0)}/${e.passkey.reduce((a, c) => a + c.trials, 0)}`
      : ''
    const where = e.label === 'baseline' ? 'baseline' : `${e.label} at step ${e.step}`
    this.note(`eval (${where}): perplexity ${ppl || '-'}${pk}`)
  }

  end(): void {
    if (this.drawn) this.io.err('\n')
    this.drawn = false
  }
}

function finalTable(summary: RunSummary, plan: RunPlan): string {
  const lengths = [...new Set(plan.eval.windows)].sort((a, b) => a - b)
  const rows = lengths.map((w) => {
    const base = summary.baselinePpl?.[String(w)]
    const last = summary.latestPpl?.[String(w)]
    const delta = base !== undefined && last !== undefined ? `${last - base >= 0 ? '+' : ''}${(last - base).toFixed(2)}` : ''
    return `  ${String(w).padStart(6)}  ${pplCell(base).padStart(9)}  ${pplCell(last).padStart(9)}  ${delta}`
  })
  return `perplexity per window (held-out):\n  window   baseline     latest  change\n${rows.join('\n')}\n`
}

export function registerTrain(program: Command, io: CliIO): Command {
  return program
    .command('train')
    .description('run a plan headless (the run folder is the one the app shows); Ctrl-C pauses with a checkpoint')
    .argument('[PLAN_JSON]', 'plan file (from `longctx plan` or the app)')
    .option('--resume <RUN_ID>', 'continue a paused or interrupted run from its last checkpoint')
    .option('--threads <n>', 'CPU threads for the engine (0 = all cores)', intOption(0, 4096))
    .action(async (file: string | undefined, opts: TrainOptions) => {
      if (!file && !opts.resume) throw new CliError('give a plan file, or --resume RUN_ID')
      if (file && opts.resume) throw new CliError('give either a plan file or --resume RUN_ID, not both')
      const progress = new Progress(io, Boolean(process.stderr.isTTY))
      let runId: string | null = null
      const folders = await dataFolders()
      const service = await openRunService(
        folders,
        (event, payload) => {
          if (event === 'runs.metrics') {
            const m = payload as { runId: string; points: MetricPoint[] }
            if (m.runId === runId) progress.metrics(m.points)
          } else if (event === 'runs.eval') {
            const e = payload as { runId: string; result: EvalResult }
            if (e.runId === runId) progress.evaluation(e.result)
          }
        },
        opts.threads,
      )
      const started = file ? await service.create(await readPlan(file), true) : await service.resume(opts.resume!)
      runId = started.id
      const { plan } = await service.get(runId, 10)
      progress.setPlan(plan)
      progress.note(`run ${runId} (${folders.runs}/${runId}): ${plan.stages.map((s) => s.name).join(' -> ')}, ${started.totalSteps} steps`)

      let interrupts = 0
      const onSigint = () => {
        interrupts++
        if (interrupts === 1) {
          progress.note('pausing: finishing the current step and writing a checkpoint (Ctrl-C again to leave now)…')
          void service.pause(runId!)
        } else {
          progress.end()
          process.exit(EXIT_PAUSED)
        }
      }
      process.on('SIGINT', onSigint)
      try {
        const end = await service.waitForEnd(runId)
        progress.end()
        if (end.baselinePpl || end.latestPpl) io.err(finalTable(end, plan))
        if (end.status === 'completed') {
          io.err(`run ${runId} completed: the extended model is in ${folders.runs}/${runId}/final\n`)
          return
        }
        const resume = `resume with: longctx train --resume ${runId}`
        if (end.status === 'paused') throw new CliError(`run ${runId} paused at step ${end.step}; ${resume}`, EXIT_PAUSED)
        throw new CliError(`run ${runId} ${end.status}: ${end.message ?? ''}${end.status === 'interrupted' ? ` ${resume}` : ''}`)
      } finally {
        process.removeListener('SIGINT', onSigint)
      }
    })
}
