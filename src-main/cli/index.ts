// The `longctx` command line: one commander program, one file per command under commands/.
// Expected failures (bad folder, bad file, engine errors) print `error: …` to stderr and exit
// non-zero without a stack trace; LONGCTX_DEBUG=1 adds the stack for anything else.
import { Command, CommanderError } from 'commander'
import { ApiError } from '../api/contract.ts'
import { registerDataset } from './commands/dataset.ts'
import { registerEval } from './commands/eval.ts'
import { registerExtend } from './commands/extend.ts'
import { registerExport } from './commands/export.ts'
import { registerGenerate } from './commands/generate.ts'
import { registerInspect } from './commands/inspect.ts'
import { registerPlan } from './commands/plan.ts'
import { registerRuns } from './commands/runs.ts'
import { registerScore } from './commands/score.ts'
import { registerTrain } from './commands/train.ts'
import { CliError, processIO, type CliIO } from './common.ts'

// Exit codes: 1 for a failure the user can fix (bad input, missing file, engine error), 2 for a
// command line commander rejected, 70 (EX_SOFTWARE) for a bug.
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2
export const EXIT_INTERNAL = 70

export function buildProgram(io: CliIO): Command {
  const program = new Command()
    .name('longctx')
    .description('Extend the context of GPT-2-family models: inspect, score, generate, extend.')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .exitOverride()
  for (const register of [
    registerInspect,
    registerScore,
    registerGenerate,
    registerExtend,
    registerDataset,
    registerPlan,
    registerTrain,
    registerRuns,
    registerEval,
    registerExport,
  ]) {
    const cmd = register(program, io)
    cmd.exitOverride().configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
  }
  return program
}

function isTokenizerFileError(e: unknown): e is Error {
  return e instanceof Error && e.name === 'TokenizerFileError'
}

export function reportError(e: unknown, io: CliIO): number {
  if (e instanceof CommanderError) {
    // commander already printed its message (or the help text, for exit code 0).
    return e.exitCode === 0 ? 0 : EXIT_USAGE
  }
  if (e instanceof CliError || e instanceof ApiError || isTokenizerFileError(e)) {
    io.err(`error: ${(e as Error).message}\n`)
    if (process.env.LONGCTX_DEBUG) io.err(`${(e as Error).stack}\n`)
    return e instanceof CliError ? e.exitCode : EXIT_FAILURE
  }
  const err = e instanceof Error ? e : new Error(String(e))
  io.err(`error: ${err.message}\n`)
  io.err(process.env.LONGCTX_DEBUG ? `${err.stack}\n` : '(this looks like a bug; run with LONGCTX_DEBUG=1 for details)\n')
  return EXIT_INTERNAL
}

export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  try {
    await buildProgram(io).parseAsync(argv)
    return 0
  } catch (e) {
    return reportError(e, io)
  }
}
