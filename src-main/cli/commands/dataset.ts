// `longctx dataset import PATH --model MODEL_DIR`: tokenizes a text source with the model's
// tokenizer into the app's data folder (or finds it already there) and prints its statistics;
// `longctx dataset list` and `longctx dataset show ID` print what is imported. The same datasets
// the app shows: the data folder comes from the app's settings (LONGCTX_DATA_DIR overrides).
import type { Command } from 'commander'
import type { DatasetStats, DatasetSummary } from '../../api/contract.ts'
import { importDataset, splitFieldList, type ImportProgress } from '../../core/datasets/import.ts'
import { DatasetService, summarize } from '../../core/datasets/service.ts'
import { dataLayout } from '../../core/paths.ts'
import { SettingsService } from '../../core/settings.ts'
import { CliError, floatOption, formatBytes, formatCount, intOption, type CliIO } from '../common.ts'

interface ImportOptions {
  model: string
  field?: string
  separator?: string
  skipBad?: boolean
  heldOut?: number
  seed?: number
  workers?: number
  json?: boolean
}

async function datasetsDir(): Promise<string> {
  const settings = await SettingsService.open(process.env)
  return dataLayout(settings.get().dataDir).datasets
}

export function registerDataset(program: Command, io: CliIO): Command {
  const dataset = program.command('dataset').description('import text datasets and list them')

  dataset
    .command('import')
    .description('tokenize a dataset with the model\'s tokenizer (instant when already imported) and print its statistics')
    .argument('<PATH>', 'a .txt/.md file, a folder of .txt/.md files, .jsonl, .json, .csv, .tsv or .parquet')
    .requiredOption('--model <MODEL_DIR>', 'model folder whose tokenizer is used')
    .option('--field <NAME>', 'text field of the records (default: "text", or a common name); NAME1,NAME2 joins several')
    .option('--separator <LINE>', 'single .txt: a line equal to LINE separates documents ("" = blank lines)')
    .option('--skip-bad', 'skip malformed records and unreadable files (default: stop at the first one)')
    .option('--held-out <FRACTION>', 'fraction of documents kept for perplexity (default 0.02)', floatOption(0, 0.5))
    .option('--seed <N>', 'seed of the train/held-out split', intOption(0, 2 ** 32 - 1))
    .option('--workers <N>', 'tokenizer threads (default: one per core)', intOption(1, 1024))
    .option('--json', 'print the statistics as JSON')
    .action(async (path: string, opts: ImportOptions) => {
      const dir = await datasetsDir()
      const controller = new AbortController()
      const onSigint = () => controller.abort()
      process.once('SIGINT', onSigint)
      const bar = new ProgressBar(io, Boolean(process.stderr.isTTY))
      try {
        const result = await importDataset(
          {
            path,
            modelDir: opts.model,
            field: opts.field === undefined ? undefined : splitFieldList(opts.field),
            separator: opts.separator,
            onBadLine: opts.skipBad ? 'skip' : 'stop',
            heldOutFraction: opts.heldOut,
            seed: opts.seed,
          },
          { datasetsDir: dir, signal: controller.signal, onProgress: (p) => bar.update(p), workers: opts.workers },
        )
        bar.end()
        const summary = await summarize(result.dir, result.manifest)
        if (opts.json) {
          io.out(JSON.stringify(toJson(summary, { cached: result.cached, dir: result.dir }), null, 2) + '\n')
        } else {
          const how = result.cached
            ? 'already imported (same files, tokenizer and options): nothing to do'
            : `imported in ${result.manifest.import.seconds.toFixed(1)} s, ${result.manifest.import.mbPerSec} MB/s on ${result.manifest.import.workers} thread${result.manifest.import.workers === 1 ? '' : 's'}`
          io.out(`dataset ${summary.id}: ${how}\n${describe(summary)}`)
        }
      } catch (err) {
        bar.end()
        if (controller.signal.aborted) throw new CliError('import cancelled; the partial dataset was removed', 130)
        throw err
      } finally {
        process.removeListener('SIGINT', onSigint)
      }
    })

  dataset
    .command('list')
    .description('list the imported datasets')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const dir = await datasetsDir()
      const all = await new DatasetService({ datasetsDir: () => dir, emit: () => undefined }).list()
      if (opts.json) {
        io.out(JSON.stringify(all.map((s) => toJson(s, {})), null, 2) + '\n')
        return
      }
      if (all.length === 0) {
        io.out(`No datasets imported yet (in ${dir}). Import one with: longctx dataset import PATH --model MODEL_DIR\n`)
        return
      }
      const rows = all.map((s) => [
        s.id,
        s.name,
        formatCount(s.stats.total.documents),
        formatCount(s.stats.total.tokens),
        formatCount(s.stats.atLeast['8192'].documents),
        s.createdAt.slice(0, 16).replace('T', ' '),
      ])
      io.out(table(['ID', 'NAME', 'DOCS', 'TOKENS', 'DOCS>=8K', 'CREATED'], rows))
    })

  dataset
    .command('show')
    .description('print the statistics of an imported dataset')
    .argument('<ID>', 'dataset id (from `longctx dataset list`)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const dir = await datasetsDir()
      const s = await new DatasetService({ datasetsDir: () => dir, emit: () => undefined }).get(id)
      io.out(opts.json ? JSON.stringify(toJson(s, {}), null, 2) + '\n' : `dataset ${s.id}\n${describe(s)}`)
    })

  return dataset
}

/** The JSON the CLI prints: the statistics at the top level, as scripts expect. */
function toJson(s: DatasetSummary, extra: { cached?: boolean; dir?: string }) {
  const { stats, id, ...rest } = s
  return { id, ...extra, ...stats, ...rest }
}

function describe(s: DatasetSummary): string {
  const st: DatasetStats = s.stats
  const lines: string[] = []
  const field = s.source.textFields ? `, text field ${s.source.textFields.map((f) => `"${f}"`).join(' + ')}` : ''
  lines.push(`source      ${s.source.path} (${s.source.format}, ${s.source.files} file${s.source.files === 1 ? '' : 's'}, ${formatBytes(s.source.bytes)}${field})`)
  lines.push(`tokenizer   ${s.tokenizer.kind} from ${s.tokenizer.modelDir} (vocabulary ${s.tokenizer.vocabSize})`)
  lines.push(`documents   ${num(st.documents)} train + ${num(st.heldOut.documents)} held-out = ${num(st.total.documents)}`)
  lines.push(`tokens      ${formatCount(st.tokens)} train + ${formatCount(st.heldOut.tokens)} held-out = ${formatCount(st.total.tokens)}`)
  lines.push(`per doc     median ${num(st.medianDocumentTokens)}, mean ${num(st.meanDocumentTokens)}, longest ${num(st.longestDocumentTokens)} tokens`)
  lines.push('')
  lines.push('document lengths (tokens, training split)')
  const maxDocs = Math.max(1, ...st.lengthHistogram.map((b) => b.documents))
  for (const b of st.lengthHistogram) {
    const bar = '#'.repeat(Math.round((b.documents / maxDocs) * 30))
    lines.push(`  ${b.label.padEnd(8)} ${num(b.documents).padStart(9)} docs ${formatCount(b.tokens).padStart(8)} tok  ${bar}`)
  }
  lines.push('')
  lines.push('long enough for a context of (training split)')
  for (const [mark, v] of Object.entries(st.atLeast)) {
    lines.push(`  >= ${mark.padEnd(6)} ${num(v.documents).padStart(9)} docs ${formatCount(v.tokens).padStart(8)} tok   held-out windows: ${st.heldOut.windows[mark as keyof typeof st.heldOut.windows]}`)
  }
  if (st.warnings.length) {
    lines.push('')
    for (const w of st.warnings) lines.push(`warning: ${w}`)
  }
  if (s.importNotes.length) {
    lines.push('')
    for (const n of s.importNotes.slice(0, 10)) lines.push(`note: ${n}`)
  }
  return lines.join('\n') + '\n'
}

function num(n: number): string {
  return n.toLocaleString('en-US')
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n'
  return line(head) + rows.map(line).join('')
}

/** A one-line progress bar on stderr (redrawn in place on a terminal, one line per phase otherwise). */
class ProgressBar {
  private lastPhase = ''
  private drawn = false
  constructor(
    private readonly io: CliIO,
    private readonly tty: boolean,
  ) {}

  update(p: ImportProgress): void {
    if (!this.tty) {
      if (p.phase !== this.lastPhase && p.phase !== 'done') {
        this.io.err(`${p.phase}${p.phase === 'hashing' || p.phase === 'tokenizing' ? ` ${formatBytes(p.bytesTotal)}` : ''}…\n`)
      }
      this.lastPhase = p.phase
      return
    }
    const frac = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 0
    const width = 24
    const filled = Math.round(frac * width)
    const eta = p.etaSeconds === null ? '' : ` ETA ${formatSeconds(p.etaSeconds)}`
    const rate = p.phase === 'tokenizing' ? ` ${p.mbPerSec.toFixed(1)} MB/s` : ''
    const text =
      `${p.phase.padEnd(10)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ` +
      `${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)} ${formatCount(p.documents)} docs ${formatCount(p.tokens)} tok${rate}${eta}`
    this.io.err(`\r${text}\x1b[K`)
    this.drawn = true
  }

  end(): void {
    if (this.drawn) this.io.err('\n')
    this.drawn = false
  }
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.round(s)}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}
