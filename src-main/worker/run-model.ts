// The model a run has produced so far: final/ when it completed, else its latest checkpoint
// loaded into the base model with the position table of the checkpoint's stage. For `longctx
// eval RUN` (and later chat/export); the training worker has its own resume path.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { RunPlan } from '../api/runs.ts'
import { latestCheckpoint, runPaths } from '../core/runs/store.ts'
import type { EngineModel } from '../engine/model.ts'
import { loadModel } from './train.ts'

export interface RunModel {
  model: EngineModel
  source: string // what was loaded, for the user
}

export async function openRunModel(runDir: string, plan: RunPlan, backend: RunPlan['backend']): Promise<RunModel> {
  const paths = runPaths(runDir)
  if (existsSync(join(paths.final, 'config.json'))) {
    return { model: await loadModel(paths.final, backend), source: `${paths.final} (the completed run's model)` }
  }
  const ckpt = await latestCheckpoint(runDir)
  const model = await loadModel(plan.modelDir, backend)
  if (!ckpt) return { model, source: `${plan.modelDir} (the base model: the run has no checkpoint yet)` }
  try {
    for (let k = 0; k <= ckpt.stage; k++) await model.extendPositions(plan.stages[k]!.context, plan.extendMode, plan.seed + k)
    await model.loadCheckpoint(join(paths.checkpoints, ckpt.file))
  } catch (err) {
    model.dispose()
    throw err
  }
  return { model, source: `checkpoint at step ${ckpt.step} (stage ${plan.stages[ckpt.stage]!.name})` }
}
