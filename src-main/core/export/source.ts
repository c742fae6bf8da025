// What `longctx export ARG` (and anything else given one path or id) exports: a model folder, a
// checkpoint file, or a run. Run ids are resolved by resolvers that the runs code registers here
// (core/runs/export-source.ts, from createCore and the CLI's export command); an id no resolver
// knows that is neither a folder nor a file is reported as unknown.
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { ApiError } from '../../api/contract.ts'
import { readCheckpointInfo, type ModelSource } from '../model-source.ts'

export interface ResolveContext {
  dataDir?: string // the app's data folder (runs live under <dataDir>/runs/<runId>/)
  model?: string // --model DIR: the model folder a checkpoint file belongs to
}

// A resolver returns the source for `arg`, or null when `arg` is not one of its kind.
export type ExportSourceResolver = (arg: string, ctx: ResolveContext) => Promise<ModelSource | null>

const resolvers: ExportSourceResolver[] = []

// ==== RUNS: the place where a run id (or a run folder) becomes its latest checkpoint. ==========
// The runs code calls this once at start-up, e.g.
//   registerExportSourceResolver(async (arg, ctx) => {
//     const run = await findRun(ctx.dataDir, arg); if (!run) return null
//     return { kind: 'checkpoint', modelDir: run.modelDir, checkpoint: run.latestCheckpoint }
//   })
// Resolvers run in registration order, before the folder/file rules below.
export function registerExportSourceResolver(resolver: ExportSourceResolver): () => void {
  resolvers.push(resolver)
  return () => {
    const i = resolvers.indexOf(resolver)
    if (i >= 0) resolvers.splice(i, 1)
  }
}
// ================================================================================================

export async function resolveExportSource(arg: string, ctx: ResolveContext = {}): Promise<ModelSource> {
  for (const r of resolvers) {
    const found = await r(arg, ctx)
    if (found) return found
  }
  const abs = path.resolve(arg)
  const st = await stat(abs).catch(() => null)
  if (st?.isDirectory()) {
    const config = await stat(path.join(abs, 'config.json')).catch(() => null)
    if (config?.isFile()) return { kind: 'model', path: abs }
    throw new ApiError(
      'bad_input',
      `${abs} is a folder without config.json; pass a model folder, a checkpoint file (with --model DIR) or a run id`,
    )
  }
  if (st?.isFile()) {
    const info = await readCheckpointInfo(abs) // throws bad_input when it is not a checkpoint
    if (!ctx.model)
      throw new ApiError(
        'bad_input',
        `${abs} is a checkpoint (step ${info.step}, ${info.nPositions} positions); say which model folder it was trained from with --model DIR`,
      )
    return { kind: 'checkpoint', modelDir: path.resolve(ctx.model), checkpoint: abs }
  }
  throw new ApiError('not_found', `"${arg}" is not a model folder, a checkpoint file or a known run`)
}
