// `longctx generate MODEL_DIR --prompt TEXT`: streams the continuation (not the prompt) to stdout.
import { randomInt } from 'node:crypto'
import type { Command } from 'commander'
import { Option } from 'commander'
import {
  BACKEND_CHOICES,
  floatOption,
  intOption,
  openModel,
  openTokenizer,
  setThreads,
  type BackendOption,
  type CliIO,
} from '../common.ts'

interface GenerateOptions {
  prompt: string
  maxTokens: number
  temperature: number
  topK: number
  topP: number
  repetitionPenalty: number
  seed?: number
  backend: BackendOption
  threads?: number
}

export function registerGenerate(program: Command, io: CliIO): Command {
  return program
    .command('generate')
    .description('continue a prompt with KV-cached sampling, streamed to stdout')
    .argument('<MODEL_DIR>', 'model folder')
    .requiredOption('--prompt <TEXT>', 'text to continue')
    .option('--max-tokens <N>', 'new tokens at most (also capped by the context)', intOption(1), 128)
    .option('--temperature <T>', 'sampling temperature; 0 = greedy (deterministic)', floatOption(0), 0.8)
    .option('--top-k <K>', 'keep the K most likely tokens; 0 = off', intOption(0), 0)
    .option('--top-p <P>', 'nucleus sampling mass; 1 = off', floatOption(0, 1), 1)
    .option('--repetition-penalty <R>', 'CTRL-style penalty on tokens already in the context; 1 = off', floatOption(0), 1)
    .option('--seed <S>', 'sampling seed (default: random)', intOption(0))
    .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_CHOICES).default('auto'))
    .option('--threads <n>', 'CPU threads (0 = all cores)', intOption(0, 4096))
    .action(async (dir: string, opts: GenerateOptions) => {
      setThreads(opts.threads)
      const tokenizer = await openTokenizer(dir)
      const model = await openModel(dir, opts.backend)
      // Ctrl-C stops the stream cleanly (the text so far stays printed) instead of killing the
      // process in the middle of a native call.
      const abort = new AbortController()
      const onSigint = () => abort.abort()
      process.once('SIGINT', onSigint)
      try {
        let last = ''
        for await (const piece of model.generate(tokenizer, opts.prompt, {
          maxTokens: opts.maxTokens,
          temperature: opts.temperature,
          topK: opts.topK,
          topP: opts.topP,
          repetitionPenalty: opts.repetitionPenalty,
          seed: opts.seed ?? randomInt(0, 2 ** 47),
          signal: abort.signal,
        })) {
          io.out(piece)
          last = piece
        }
        if (!last.endsWith('\n')) io.out('\n')
      } finally {
        process.removeListener('SIGINT', onSigint)
        model.dispose()
      }
    })
}
