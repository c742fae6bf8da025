// `longctx score MODEL_DIR TEXT_FILE --window N`: perplexity over consecutive non-overlapping
// windows of N tokens (see engine/perplexity.ts for the exact rule).
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { Command } from 'commander'
import { ApiError } from '../../api/contract.ts'
import { perplexityPerWindow } from '../../engine/perplexity.ts'
import {
  BACKEND_CHOICES,
  CliError,
  intOption,
  openModel,
  openTokenizer,
  setThreads,
  type BackendOption,
  type CliIO,
} from '../common.ts'
import { Option } from 'commander'

interface ScoreOptions {
  window: number
  json?: boolean
  backend: BackendOption
  threads?: number
  batchTokens: number
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new ApiError('not_found', `${path.resolve(file)}: no such file`)
    if (code === 'EISDIR') throw new ApiError('bad_input', `${path.resolve(file)} is a folder; give a text file`)
    if (code === 'EACCES') throw new ApiError('permission', `${path.resolve(file)}: permission denied`)
    throw e
  }
}

export function registerScore(program: Command, io: CliIO): Command {
  return program
    .command('score')
    .description('perplexity of a text file cut into non-overlapping windows of N tokens')
    .argument('<MODEL_DIR>', 'model folder')
    .argument('<TEXT_FILE>', 'UTF-8 text file')
    .requiredOption('--window <N>', 'tokens per window (<= the model context)', intOption(2))
    .option('--json', 'print JSON: tokens, windows, predictions, nll, ppl')
    .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_CHOICES).default('auto'))
    .option('--threads <n>', 'CPU threads (0 = all cores)', intOption(0, 4096))
    .option('--batch-tokens <n>', 'tokens per forward call (windows are batched)', intOption(1), 4096)
    .action(async (dir: string, file: string, opts: ScoreOptions) => {
      setThreads(opts.threads)
      const text = await readText(file)
      const tokenizer = await openTokenizer(dir)
      const ids = tokenizer.encode(text)
      if (ids.length < 2)
        throw new CliError(`${path.resolve(file)} has ${ids.length} token${ids.length === 1 ? '' : 's'}; at least 2 are needed to score`)
      const model = await openModel(dir, opts.backend)
      try {
        const ctx = model.config.nPositions
        if (opts.window > ctx)
          throw new CliError(`--window ${opts.window} is longer than the model's context (${ctx} tokens); use --window ${ctx} or extend the model first (longctx extend)`)
        const r = await perplexityPerWindow(model, ids, opts.window, { batchTokens: opts.batchTokens })
        if (opts.json) {
          io.out(JSON.stringify({ ...r, window: opts.window, backend: model.backend }, null, 2) + '\n')
        } else {
          io.out(
            `tokens       ${r.tokens}\n` +
              `windows      ${r.windows} of ${opts.window} tokens${r.windows * opts.window !== r.tokens ? ' (last one shorter or dropped)' : ''}\n` +
              `predictions  ${r.predictions}\n` +
              `mean NLL     ${r.nll.toFixed(4)}\n` +
              `perplexity   ${r.ppl.toFixed(3)}\n`,
          )
        }
      } finally {
        model.dispose()
      }
    })
}
