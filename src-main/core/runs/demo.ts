// The embedded default: the tiny demo model in resources/demo (pretrained with this engine on the
// bundled corpus by scripts/make-demo-model.ts) and that corpus, resources/corpus (the King James
// Bible, public domain). "New run -> Demo" imports the corpus with the demo model's tokenizer and
// plans 256 -> 512 -> 1024 small enough to finish on a laptop CPU in a few minutes.
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { RunPlan } from '../../api/runs.ts'
import { buildDefaultPlan, type DatasetFacts, type ModelFacts } from './plan.ts'

// resources/ from the source tree or beside the bundle (out/main/... -> the checkout), or
// $LONGCTX_RESOURCES_DIR (a packaged app passes its resources folder).
export function findResourcesDir(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.LONGCTX_RESOURCES_DIR) return env.LONGCTX_RESOURCES_DIR
  let dir = import.meta.dirname
  for (;;) {
    if (existsSync(join(dir, 'resources', 'demo', 'config.json'))) return join(dir, 'resources')
    const parent = dirname(dir)
    if (parent === dir) return null
    dir = parent
  }
}

export function demoPaths(resources: string) {
  return { modelDir: join(resources, 'demo'), corpus: join(resources, 'corpus', 'kjv-chapters.jsonl') }
}

// The default plan cut down to a few minutes on two CPU cores (1000-1500 training tokens/s for
// the 1M-parameter demo model): 2k tokens per step, 32 + 24 steps, evaluations on a handful of
// windows, one passkey trial per cell. The peak rate is the pretraining's final one (2e-4): a
// fresh AdamW at a higher rate first undoes more than a few dozen steps can win back.
export function demoPlan(model: ModelFacts, data: DatasetFacts): RunPlan {
  const plan = buildDefaultPlan(model, data, { targetContext: model.contextLength * 4, name: 'Demo: 256 -> 1k on the King James Bible' })
  const steps = [32, 24]
  plan.stages = plan.stages.map((s, i) => {
    const microBatch = Math.max(1, Math.floor(1024 / s.context))
    return {
      ...s,
      steps: steps[i] ?? 24,
      tokensPerStep: 2048,
      microBatch,
      lr: { peak: 2e-4, warmupSteps: 4, minRatio: 0.1 },
      recompute: false,
      evalEvery: (steps[i] ?? 24) / 2,
      checkpointEvery: 8,
    }
  })
  plan.backend = 'cpu'
  plan.eval = {
    ...plan.eval,
    maxWindowsPerLength: 6,
    slidingStride: Math.floor(model.contextLength / 2),
    passkey: plan.eval.passkey ? { ...plan.eval.passkey, trials: 1 } : null,
  }
  delete plan.notes // the demo is short on purpose; the default plan's advice does not apply
  return plan
}
