// The time estimate: per stage, a few real micro-batches (forward + backward) and optimizer
// steps on the real data and device, after one warm-up of each (it allocates the activations,
// and on CUDA builds the attention plans). A step is accumulation x the median micro-batch time
// + the median optimizer time; the stage is that x its steps. Timing micro-batches rather than
// whole steps keeps the measurement short when a step accumulates dozens of them (a 1.3B model
// at 8k: 64 x 8k tokens per step). The weights are thrown away.
import type { StageTimeEstimate } from '../api/runs.ts'
import type { DatasetReader } from '../core/datasets/index.ts'
import { loadNative } from '../engine/native.ts'
import type { EngineModel } from '../engine/model.ts'
import type { MeasureJob } from './protocol.ts'
import { accumulation, createSampler, deviceName, loadModel, openDataset, trainConfig, type Sink } from './train.ts'

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

export async function runMeasure(job: MeasureJob, sink: Sink): Promise<StageTimeEstimate[]> {
  const plan = job.plan
  loadNative().setNumThreads(job.threads)
  let reader: DatasetReader | null = null
  let model: EngineModel | null = null
  try {
    reader = await openDataset(job.datasetsDir, plan.datasetId)
    model = await loadModel(plan.modelDir, plan.backend)
    sink.send({ type: 'started', pid: process.pid, backend: model.backend, device: deviceName(model.backend) })
    const out: StageTimeEstimate[] = []
    for (const [k, stage] of plan.stages.entries()) {
      sink.send({ type: 'phase', stage: k, step: 0, text: `measuring stage ${stage.name}` })
      await model.extendPositions(stage.context, plan.extendMode, plan.seed + k)
      await model.trainInit(trainConfig(plan, k))
      await model.resetPeakMemory()
      const sampler = createSampler(reader, plan, k)
      const accum = accumulation(stage)
      const microMs: number[] = []
      const optimizerMs: number[] = []
      for (let i = 0; i <= job.steps; i++) {
        const b = await sampler.nextBatch(stage.microBatch)
        await model.zeroGrad()
        const t0 = performance.now()
        await model.forwardBackward({ tokens: b.tokens, targets: b.targets, segments: b.segments ?? null, B: b.rows, T: b.contextLength }, 1 / accum)
        const t1 = performance.now()
        // A tiny rate: the step costs the same, and the weights stay sane for the next stage.
        await model.optimizerStep(1e-9)
        const t2 = performance.now()
        if (i > 0) {
          microMs.push(t1 - t0)
          optimizerMs.push(t2 - t1)
        }
      }
      const stepMs = accum * median(microMs) + median(optimizerMs)
      const mem = await model.memoryStats()
      out.push({ stage: stage.name, stepMs, etaSeconds: (stepMs * stage.steps) / 1000, measuredPeakBytes: mem.peakMappedBytes })
    }
    return out
  } finally {
    model?.dispose()
    await reader?.close().catch(() => undefined)
  }
}
