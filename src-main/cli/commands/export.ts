// `longctx export RUN_OR_CHECKPOINT --format hf|gguf [--type f16|q8_0] --out PATH`: the same
// export as the app's Export dialog, headless. The argument is a model folder, a checkpoint file
// (with --model DIR, the folder it was trained from) or a run id (resolved by the runs code, see
// core/export/source.ts).
import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { Option } from 'commander'
import { exportCardSchema, type ExportCard, type ExportFormat, type GgufType } from '../../api/contract.ts'
import { runExport } from '../../core/export/run-export.ts'
import { resolveExportSource } from '../../core/export/source.ts'
import { defaultDataDir } from '../../core/paths.ts'
import { registerRunExportResolver } from '../../core/runs/export-source.ts'
import { dataFolders } from '../run-service.ts'
import { CliError, formatBytes, intOption, setThreads, type CliIO } from '../common.ts'

interface ExportOptions {
  format: ExportFormat
  type: GgufType
  out: string
  model?: string
  name?: string
  card?: string
  overwrite?: boolean
  maxShardMb?: number
  threads?: number
}

async function readCard(file: string): Promise<ExportCard> {
  let json: unknown
  try {
    json = JSON.parse(await readFile(file, 'utf8'))
  } catch (e) {
    throw new CliError(`--card ${file}: ${(e as Error).message}`)
  }
  const parsed = exportCardSchema.safeParse(json)
  if (!parsed.success)
    throw new CliError(`--card ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`)
  return parsed.data
}

export function registerExport(program: Command, io: CliIO): Command {
  return program
    .command('export')
    .description('export a model folder, checkpoint or run as a Hugging Face folder or a GGUF file')
    .argument('<RUN_OR_CHECKPOINT>', 'run id, checkpoint file (with --model) or model folder')
    .addOption(new Option('--format <format>', 'hf: safetensors folder for transformers; gguf: one file for llama.cpp').choices(['hf', 'gguf']).makeOptionMandatory())
    .addOption(new Option('--type <type>', 'GGUF weight type').choices(['f16', 'q8_0']).default('f16'))
    .requiredOption('--out <PATH>', 'folder to create (hf), or .gguf file or existing folder (gguf)')
    .option('--model <DIR>', 'the model folder a checkpoint file was trained from (tokenizer, config)')
    .option('--name <NAME>', 'model name in the GGUF metadata and the model card')
    .option('--card <FILE>', 'JSON with the model card facts: {title, plan: {stages: [...]}, perplexity: [{window, baseline, value}]}')
    .option('--overwrite', 'replace an existing output')
    .option('--max-shard-mb <MB>', 'hf: split safetensors above this size', intOption(1), 2048)
    .option('--threads <n>', 'CPU threads (0 = all cores)', intOption(0, 4096))
    .action(async (arg: string, opts: ExportOptions) => {
      setThreads(opts.threads)
      // Run ids: the runs of the app's data folder (its settings, as `longctx runs` lists them).
      const unregister = registerRunExportResolver(async () => (await dataFolders()).runs)
      let source
      try {
        source = await resolveExportSource(arg, { model: opts.model, dataDir: defaultDataDir() })
      } finally {
        unregister()
      }
      const card = opts.card ? await readCard(opts.card) : undefined
      const tty = process.stderr.isTTY === true
      let lastLine = ''
      let lastPct = -1
      const result = await runExport({
        source,
        format: opts.format,
        type: opts.type,
        out: opts.out,
        name: opts.name,
        card,
        overwrite: opts.overwrite,
        maxShardBytes: (opts.maxShardMb ?? 2048) * 1024 * 1024,
        onProgress: (_phase, fraction, detail) => {
          const pct = Math.floor(fraction * 100)
          // A terminal gets one line that updates; a log gets a line per 10%.
          if (tty) {
            const line = `${String(pct).padStart(3)}%  ${detail}`
            if (line !== lastLine) io.err(`\r\x1b[2K${line}`)
            lastLine = line
          } else if (pct >= lastPct + 10 || pct === 100) {
            io.err(`${pct}% ${detail}\n`)
            lastPct = pct
          }
        },
      })
      if (tty) io.err('\r\x1b[2K')
      for (const w of result.warnings) io.err(`warning: ${w}\n`)
      io.out(
        `${result.format === 'hf' ? 'HF folder' : 'GGUF'} ${result.path}: ${formatBytes(result.bytes)}, ` +
          `context ${result.contextLength} tokens, ${(result.elapsedMs / 1000).toFixed(1)} s\n`,
      )
      if (result.format === 'hf') io.out(`files: ${result.files.join(', ')}\n`)
    })
}
