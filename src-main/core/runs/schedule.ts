// The learning-rate schedule of one stage: linear warmup from 0 to the peak, then a half cosine
// down to minRatio x peak at the stage's last step. Each stage has its own schedule (a stage
// starts with fresh AdamW moments after the position table grows, so it warms up again).
import type { LearningRate } from '../../api/runs.ts'

// The rate for optimizer step `stageStep` (1-based) of a stage of `steps` steps. Step 1 of a
// warmup of w steps gets peak/w, never 0: a zero first step would waste a batch.
export function learningRateAt(lr: LearningRate, steps: number, stageStep: number): number {
  const s = Math.min(Math.max(1, stageStep), steps)
  const min = lr.peak * lr.minRatio
  if (lr.warmupSteps > 0 && s <= lr.warmupSteps) return (lr.peak * s) / lr.warmupSteps
  const decaySteps = steps - lr.warmupSteps
  // With one step or none after warmup there is nothing to decay over: stay at the peak.
  if (decaySteps <= 1) return lr.peak
  // progress runs from 0 (the first step after warmup, at the peak) to 1 (the stage's last
  // step, exactly at the minimum).
  const progress = (s - lr.warmupSteps - 1) / (decaySteps - 1)
  return min + (lr.peak - min) * 0.5 * (1 + Math.cos(Math.PI * progress))
}
