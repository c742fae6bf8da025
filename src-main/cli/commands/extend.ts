// `longctx extend MODEL_DIR --to N --out DIR`: a new model folder whose position table has N
// rows (no training), with the tokenizer files copied beside it.
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Command } from 'commander'
import { Option } from 'commander'
import { findTokenizerFiles } from '../../core/tokenizer/index.ts'
import type { ExtendMode } from '../../engine/model.ts'
import { BACKEND_CHOICES, CliError, intOption, openModel, setThreads, type BackendOption, type CliIO } from '../common.ts'

interface ExtendOptions {
  to: number
  mode: ExtendMode
  out: string
  seed: number
  force?: boolean
  backend: BackendOption
  threads?: number
}

// Tokenizer side files transformers reads besides the vocabulary itself.
const TOKENIZER_EXTRAS = ['tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'generation_config.json']

async function isNonEmptyFolder(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length > 0
  } catch {
    return false
  }
}

// Copies the tokenizer files; tokenizer_config.json's model_max_length follows the new context
// when it named the old one (transformers warns about longer inputs otherwise).
async function copyTokenizer(src: string, dst: string, oldCtx: number, newCtx: number): Promise<string[]> {
  const found = await findTokenizerFiles(src)
  const names = new Set<string>((found?.files ?? []).map((f) => path.basename(f)))
  for (const extra of TOKENIZER_EXTRAS) names.add(extra)
  const copied: string[] = []
  for (const name of names) {
    const from = path.join(src, name)
    try {
      if (name === 'tokenizer_config.json') {
        const cfg = JSON.parse(await readFile(from, 'utf8')) as Record<string, unknown>
        if (cfg.model_max_length === oldCtx) cfg.model_max_length = newCtx
        await writeFile(path.join(dst, name), JSON.stringify(cfg, null, 2) + '\n')
      } else {
        await copyFile(from, path.join(dst, name))
      }
      copied.push(name)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code !== 'ENOENT') throw e // an optional file that is not there
    }
  }
  return copied
}

export function registerExtend(program: Command, io: CliIO): Command {
  return program
    .command('extend')
    .description('write a copy of a model with a longer position table (no training)')
    .argument('<MODEL_DIR>', 'model folder')
    .requiredOption('--to <N>', 'new context length (position rows)', intOption(1))
    .addOption(
      new Option('--mode <mode>', 'tile: rows repeat (exact on short inputs); interpolate; random')
        .choices(['tile', 'interpolate', 'random'])
        .default('tile'),
    )
    .requiredOption('--out <DIR>', 'folder to write (must not exist or be empty)')
    .option('--seed <S>', 'seed for --mode random', intOption(0), 0)
    .option('--force', 'write into a folder that is not empty')
    .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_CHOICES).default('cpu'))
    .option('--threads <n>', 'CPU threads (0 = all cores)', intOption(0, 4096))
    .action(async (dir: string, opts: ExtendOptions) => {
      setThreads(opts.threads)
      const src = path.resolve(dir)
      const out = path.resolve(opts.out)
      if (out === src) throw new CliError('--out must be a new folder, not the model folder itself')
      if (!opts.force && (await isNonEmptyFolder(out)))
        throw new CliError(`${out} is not empty; choose a new folder or pass --force`)
      const model = await openModel(src, opts.backend)
      try {
        const oldCtx = model.config.nPositions
        if (opts.to < oldCtx)
          throw new CliError(`--to ${opts.to} is shorter than the model's context (${oldCtx}); extend only grows it`)
        await model.extendPositions(opts.to, opts.mode, opts.seed)
        await mkdir(out, { recursive: true })
        await model.save(out)
        const copied = await copyTokenizer(src, out, oldCtx, opts.to)
        io.out(
          `wrote ${out}: context ${oldCtx} -> ${opts.to} (${opts.mode})` +
            (copied.length ? `, tokenizer: ${copied.join(', ')}` : ', no tokenizer files found to copy') +
            '\n',
        )
      } finally {
        model.dispose()
      }
    })
}
