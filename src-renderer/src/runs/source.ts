// How the runs list and the chat picker name what a run opens as (its summary's modelSource).
import type { RunSummary } from '@contract'

// "final" for the completed run's model, "step N" for a checkpoint (N from its file name,
// step-000040.safetensors, which is the step the checkpoint was taken at), null for nothing yet.
export function runSourceLabel(r: Pick<RunSummary, 'modelSource'>): string | null {
  const s = r.modelSource
  if (!s) return null
  if (s.kind === 'model') return 'final'
  const m = /step-(\d+)\.safetensors$/.exec(s.checkpoint)
  return m ? `step ${Number(m[1])}` : 'checkpoint'
}
