// Run ids (and run folders) as export sources: `longctx export RUN_ID …` and anything else that
// goes through core/export/source.ts's resolveExportSource. Registered by createCore and by the
// CLI's export command; both hand in where their runs live.
import { existsSync } from 'node:fs'
import path from 'node:path'
import { ApiError } from '../../api/errors.ts'
import { runPlanSchema } from '../../api/runs.ts'
import type { ModelSource } from '../model-source.ts'
import { dataLayout } from '../paths.ts'
import { registerExportSourceResolver, type ExportSourceResolver } from '../export/source.ts'
import { readJson, readState, runPaths } from './store.ts'
import { runModelSource } from './service.ts'

const RUN_ID = /^[\w-]{1,80}$/

// The run folder `arg` names: <runsDir>/<arg> for a run id, or `arg` itself when it is a folder
// with a plan and a state (a run folder given by path). Null when it is neither.
function runFolderOf(arg: string, runsDirs: string[]): string | null {
  const isRun = (dir: string) => existsSync(runPaths(dir).state) && existsSync(runPaths(dir).plan)
  if (RUN_ID.test(arg))
    for (const runs of runsDirs) {
      const dir = path.join(runs, arg)
      if (isRun(dir)) return path.resolve(dir)
    }
  const abs = path.resolve(arg)
  return isRun(abs) ? abs : null
}

export async function resolveRunSource(arg: string, runsDirs: string[]): Promise<ModelSource | null> {
  const dir = runFolderOf(arg, runsDirs)
  if (!dir) return null
  const state = await readState(dir)
  const plan = runPlanSchema.parse(await readJson(runPaths(dir).plan))
  const source = runModelSource(plan, state, dir)
  // A run that matched but has nothing to open is an answer, not "unknown": say why.
  if (!source)
    throw new ApiError('bad_input', `Run "${state.id}" has no checkpoint yet (it is ${state.status}); export it after its first checkpoint.`)
  return source
}

// `runsDir` is asked on every call (the app's data folder can change in the settings); the
// resolve context's dataDir, when it names another data folder, is searched too.
export function runExportResolver(runsDir: () => string | Promise<string>): ExportSourceResolver {
  return async (arg, ctx) => {
    const dirs = [await runsDir()]
    if (ctx.dataDir) dirs.push(dataLayout(ctx.dataDir).runs)
    return resolveRunSource(arg, dirs)
  }
}

export function registerRunExportResolver(runsDir: () => string | Promise<string>): () => void {
  return registerExportSourceResolver(runExportResolver(runsDir))
}
