// The training loop of a staged context extension, run inside the worker process.
//
//   baseline evaluation (fresh runs only): the original model; windows longer than its context
//     are scored with the position table tiled to them, which leaves the model exactly as it is
//     on its own context (the DESIGN's ruGPT3XL table measures the baseline the same way)
//   for each stage:
//     position table extended (plan.extendMode) from the previous stage's model, fresh AdamW
//     steps: micro-batches accumulated with gradScale 1/accumulation, LR warmup + cosine,
//            one metric point per step
//     evaluation every evalEvery steps, checkpoint every checkpointEvery steps
//     stage end: evaluation, checkpoint (always kept)
//   the final model saved as an HF folder in final/
//
// Resume: the checkpoint's engine file holds params + AdamW m/v + step, its sidecar the sampler
// position; data order and optimizer state continue exactly, so an interrupted and resumed run
// ends with the same weights as one never interrupted (test/integration/runs-resume.test.ts).
//
// Pause and stop are honoured between steps: the current step finishes, a checkpoint is written,
// the worker exits (freeing the device's memory while paused). An evaluation in progress is
// finished first.
import { copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { runPlanSchema, type EvalResult, type MetricPoint, type RunPlan, type StagePlan } from '../api/runs.ts'
import { DatasetInputError, DatasetReader, DatasetSampler } from '../core/datasets/index.ts'
import { stageGradDtype } from '../core/runs/memory.ts'
import { learningRateAt } from '../core/runs/schedule.ts'
import {
  checkpointBaseName,
  ensureRunFolders,
  fileBytes,
  pruneCheckpoints,
  readJson,
  removePartialCheckpoints,
  runPaths,
  writeJsonAtomic,
  type CheckpointInfo,
} from '../core/runs/store.ts'
import { findTokenizerFiles, loadTokenizer } from '../core/tokenizer/index.ts'
import { EngineError } from '../engine/errors.ts'
import { EngineModel, type Backend, type TrainConfig } from '../engine/model.ts'
import { loadNative } from '../engine/native.ts'
import { evaluateModel, type PasskeyTokenizer } from './evaluate.ts'
import { readFaults, type Faults } from './faults.ts'
import type { FinishStatus, FromWorker, TrainJob } from './protocol.ts'

export interface Control {
  requested: 'pause' | 'stop' | null
}

export interface Sink {
  send(msg: FromWorker): void
}

// One line in worker.log (the worker's stdout goes there): enough to see what a run did, and
// where it was when a native crash ended it.
export function log(text: string): void {
  console.log(`${new Date().toISOString()} ${text}`)
}

// A failure whose message already says what to change.
export class RunFailure extends Error {
  override name = 'RunFailure'
}

export function stageLabel(plan: RunPlan, i: number): string {
  return `stage ${plan.stages[i]!.name} (${i + 1}/${plan.stages.length})`
}

// ---- opening the model, the data, the device ----------------------------------------------

export async function openDataset(datasetsDir: string, id: string): Promise<DatasetReader> {
  const dir = join(datasetsDir, id)
  try {
    return await DatasetReader.open(dir)
  } catch (err) {
    throw new RunFailure(
      `The dataset ${id} is missing or damaged (${dir}: ${(err as Error).message.replace(/\.$/, '')}). ` +
        'Re-import it (the same source with the same model gives the same id), then resume the run.',
    )
  }
}

export async function loadModel(dir: string, wanted: RunPlan['backend']): Promise<EngineModel> {
  let backend: Backend = wanted === 'auto' ? 'cpu' : wanted
  if (wanted === 'auto' && loadNative().backendsAvailable().includes('cuda')) {
    try {
      return await EngineModel.load(dir, { backend: 'cuda' })
    } catch (e) {
      // no usable GPU: the CPU backend runs everything, only slower
      if (!(e instanceof EngineError && (e.engineCode === 'LCX_ERR_BACKEND' || e.engineCode === 'LCX_ERR_OOM'))) throw e
      backend = 'cpu'
    }
  }
  return EngineModel.load(dir, { backend })
}

// The NVML index of the GPU the CUDA runtime sees as device 0.
function nvmlIndex(): number {
  const v = process.env.CUDA_VISIBLE_DEVICES?.split(',')[0]?.trim()
  return v && /^\d+$/.test(v) ? Number(v) : 0
}

export function deviceName(backend: Backend): string {
  if (backend === 'cuda') {
    const r = loadNative().nvmlQuery()
    if (r.ok) return r.gpus.find((g) => g.index === nvmlIndex())?.name ?? r.gpus[0]?.name ?? 'CUDA GPU'
    return 'CUDA GPU'
  }
  return `CPU (${os.cpus()[0]?.model.trim() ?? 'unknown'})`
}

function deviceMemory(backend: Backend): { used: number | null; total: number | null } {
  if (backend !== 'cuda') return { used: null, total: null }
  const r = loadNative().nvmlQuery()
  const g = r.ok ? (r.gpus.find((x) => x.index === nvmlIndex()) ?? r.gpus[0]) : undefined
  return g ? { used: g.usedBytes, total: g.totalBytes } : { used: null, total: null }
}

// Per stage: trainInit runs at every stage start (and before a mid-stage resume), so each stage
// gets the gradient dtype its own accumulation allows (stageGradDtype: bf16 layer-matrix
// gradients only when a step is one micro-batch), as the memory estimate assumes.
export function trainConfig(plan: RunPlan, stageIndex: number): TrainConfig {
  const o = plan.optimizer
  const stage = plan.stages[stageIndex]!
  return {
    beta1: o.beta1,
    beta2: o.beta2,
    eps: o.eps,
    weightDecay: o.weightDecay,
    gradClip: o.gradClip,
    masterDtype: o.masterDtype,
    gradDtype: stageGradDtype(stage),
    recompute: stage.recompute,
    seed: plan.seed + stageIndex,
  }
}

export function createSampler(reader: DatasetReader, plan: RunPlan, stageIndex: number, state?: CheckpointInfo['sampler']) {
  const s = plan.stages[stageIndex]!
  return DatasetSampler.create(
    reader,
    {
      contextLength: s.context,
      baseContext: plan.baseContext,
      pLong: s.pLong,
      seed: plan.seed + stageIndex,
      longMode: s.packLong ? 'pack' : 'window',
      shortMode: 'pad',
    },
    state,
  )
}

export function accumulation(s: StagePlan): number {
  return s.tokensPerStep / (s.microBatch * s.context)
}

// ---- failures -----------------------------------------------------------------------------

function isDiskFull(err: unknown): boolean {
  if ((err as NodeJS.ErrnoException)?.code === 'ENOSPC') return true
  return err instanceof EngineError && /no space|disk full|quota/i.test(err.engineMessage)
}

export function explainFailure(err: unknown, plan: RunPlan | null, where: { stage: number; step: number }): string {
  if (err instanceof RunFailure) return err.message
  const stage = plan && where.stage >= 0 ? plan.stages[where.stage] : undefined
  const at = stage ? `at step ${where.step} (stage ${stage.name})` : 'before training'
  if (err instanceof EngineError && err.engineCode === 'LCX_ERR_OOM') {
    const s = stage
      ? ` (micro-batch ${stage.microBatch}, recompute ${stage.recompute ? 'on' : 'off'}, ${stage.context} tokens)`
      : ''
    return (
      `Out of memory ${at}${s}: ${err.engineMessage.replace(/\.$/, '')}. Lower the micro-batch (the tokens per step stay the same ` +
      'through accumulation) or turn on activation recompute — "Fit to device" in the plan does both — close other programs using ' +
      'the device, then start the run again with the new plan.'
    )
  }
  if (err instanceof EngineError && err.engineCode === 'LCX_ERR_NUMERIC') {
    return (
      `Training diverged ${at}: the gradients became NaN/Inf (${err.engineMessage.replace(/\.$/, '')}). Lower the learning rate ` +
      `(peak ${stage?.lr.peak ?? '?'} -> ${stage ? stage.lr.peak / 2 : '?'}, or a longer warmup) and start the run again.`
    )
  }
  // The dataset's files vanished or broke under a running run (its shards open lazily).
  const errPath = (err as NodeJS.ErrnoException)?.path ?? ''
  if (plan && errPath.includes(plan.datasetId) && (err as NodeJS.ErrnoException).code === 'ENOENT') {
    return (
      `The dataset ${plan.datasetId} is missing ${at} (${(err as Error).message.replace(/\.$/, '')}). ` +
      'Re-import it (the same source with the same model gives the same id), then resume the run.'
    )
  }
  // Its message says what to do (import again, add longer documents, pack long examples).
  if (plan && err instanceof DatasetInputError) return `The dataset ${plan.datasetId} cannot be used ${at}: ${err.message}`
  if (isDiskFull(err)) {
    return (
      `The disk is full ${at} (${(err as Error).message.replace(/\.$/, '')}). The partial checkpoint was removed; ` +
      'free some space in the data folder, then resume the run: it continues from the last complete checkpoint.'
    )
  }
  const msg = err instanceof Error ? err.message : String(err)
  return `The run failed ${at}: ${msg.replace(/\.$/, '')}. The details are in worker.log in the run folder.`
}

// ---- the run --------------------------------------------------------------------------------

interface Clock {
  trainMs: number // training time so far (steps only), all stages
}

export async function runTraining(job: TrainJob, control: Control, sink: Sink): Promise<{ status: FinishStatus; message: string | null }> {
  const paths = runPaths(job.runDir)
  const faults = readFaults()
  let plan: RunPlan | null = null
  let where = { stage: -1, step: 0 }
  let run: StagedRun | null = null
  let reader: DatasetReader | null = null
  try {
    plan = runPlanSchema.parse(await readJson(paths.plan))
    await ensureRunFolders(job.runDir)
    loadNative().setNumThreads(job.threads)
    reader = await openDataset(job.datasetsDir, plan.datasetId)
    const tok = plan.eval.passkey ? ((await loadTokenizer(plan.modelDir)) as PasskeyTokenizer) : null
    run = new StagedRun(job, plan, reader, tok, control, sink, faults)
    const end = await run.execute((w) => (where = w))
    log(`finished: ${end.status}${end.message ? ` (${end.message})` : ''}`)
    return end
  } catch (err) {
    run?.flushMetrics(true) // the steps before the failure stay on the charts
    if (isDiskFull(err)) await removePartialCheckpoints(job.runDir).catch(() => undefined)
    const message = explainFailure(err, plan, where)
    log(`failed: ${message}\n${err instanceof Error ? err.stack : String(err)}`)
    return { status: 'failed', message }
  } finally {
    run?.model?.dispose()
    await reader?.close().catch(() => undefined)
  }
}

class StagedRun {
  model: EngineModel | null = null
  private backend: Backend = 'cpu'
  private pending: MetricPoint[] = []
  private lastFlush = 0
  private readonly clock: Clock = { trainMs: 0 }
  private latestCheckpointStep = -1

  constructor(
    private readonly job: TrainJob,
    private readonly plan: RunPlan,
    private readonly reader: DatasetReader,
    private readonly tok: PasskeyTokenizer | null,
    private readonly control: Control,
    private readonly sink: Sink,
    private readonly faults: Faults,
  ) {}

  private get paths() {
    return runPaths(this.job.runDir)
  }

  async execute(report: (w: { stage: number; step: number }) => void): Promise<{ status: FinishStatus; message: string | null }> {
    const plan = this.plan
    const resume = this.job.resumeFrom
    let startStage = 0
    let startStep = 0 // steps done in startStage
    let globalStep = 0
    if (resume) {
      this.clock.trainMs = resume.trainMs
      globalStep = resume.step
      this.latestCheckpointStep = resume.step
      if (resume.stageEnd) startStage = resume.stage + 1
      else {
        startStage = resume.stage
        startStep = resume.stageStep
      }
    }
    report({ stage: startStage, step: globalStep })

    // The device: chosen once; every later load uses the same backend.
    this.model = await loadModel(this.plan.modelDir, plan.backend)
    this.backend = this.model.backend
    this.sink.send({ type: 'started', pid: process.pid, backend: this.backend, device: deviceName(this.backend) })
    log(`worker ${process.pid}: ${resume ? `resuming from ${resume.file} (step ${resume.step})` : 'starting'} on ${deviceName(this.backend)}`)

    if (!resume) {
      await this.baseline()
      if (this.control.requested) return this.finishEarly()
      this.model = await EngineModel.load(plan.modelDir, { backend: this.backend })
    } else {
      // Rebuild the model the checkpoint was written from: the base model with the position
      // table of the checkpoint's stage (the extension is deterministic, the checkpoint then
      // overwrites every parameter).
      for (let k = 0; k <= resume.stage; k++) await this.model.extendPositions(plan.stages[k]!.context, plan.extendMode, plan.seed + k)
      const ckpt = join(this.paths.checkpoints, resume.file)
      if (resume.stageEnd) {
        await this.model.loadCheckpoint(ckpt) // parameters only: the next stage starts fresh
      } else {
        // trainInit first, so the checkpoint restores the AdamW moments and step too.
        await this.model.trainInit(trainConfig(plan, resume.stage))
        await this.model.loadCheckpoint(ckpt)
      }
    }

    for (let k = startStage; k < plan.stages.length; k++) {
      const stage = plan.stages[k]!
      const resumingMidStage = resume !== null && !resume.stageEnd && k === resume.stage
      if (!resumingMidStage) {
        await this.model.extendPositions(stage.context, plan.extendMode, plan.seed + k)
        await this.model.trainInit(trainConfig(plan, k))
      }
      const sampler = createSampler(this.reader, plan, k, resumingMidStage ? resume.sampler : undefined)
      const accum = accumulation(stage)
      log(`${stageLabel(plan, k)}: context ${stage.context}, ${accum} x ${stage.microBatch} rows per step, from step ${resumingMidStage ? startStep + 1 : 1} of ${stage.steps}`)
      const firstStep = resumingMidStage ? startStep + 1 : 1
      for (let s = firstStep; s <= stage.steps; s++) {
        globalStep++
        report({ stage: k, step: globalStep })
        const t0 = performance.now()
        if (this.faults.nanAt === globalStep) await this.poisonWeights()
        if (this.faults.oomAt === globalStep)
          throw new EngineError('engine', 'simulated out of memory', 'LCX_ERR_OOM', 'out of memory allocating activations (fault injection)')
        await this.model.zeroGrad()
        let lossSum = 0
        for (let a = 0; a < accum; a++) {
          const batch = await sampler.nextBatch(stage.microBatch)
          const loss = await this.model.forwardBackward(
            { tokens: batch.tokens, targets: batch.targets, segments: batch.segments ?? null, B: batch.rows, T: batch.contextLength },
            1 / accum,
          )
          // Caught here, before the optimizer step: a NaN never reaches the weights.
          if (!Number.isFinite(loss)) throw this.nanFailure(k, s, globalStep, loss)
          lossSum += loss
        }
        const lr = learningRateAt(stage.lr, stage.steps, s)
        const gradNorm = await this.model.optimizerStep(lr)
        const stepMs = performance.now() - t0
        this.clock.trainMs += stepMs
        const mem = await this.model.memoryStats()
        const dev = deviceMemory(this.backend)
        const ratio = sampler.ratio()
        this.pending.push({
          step: globalStep,
          stage: k,
          stageStep: s,
          timeMs: Date.now(),
          loss: lossSum / accum,
          lr,
          gradNorm,
          tokensPerSec: stage.tokensPerStep / (stepMs / 1000),
          stepMs,
          deviceUsedBytes: dev.used,
          deviceTotalBytes: dev.total,
          engineMappedBytes: mem.mappedBytes,
          engineAllocatedBytes: mem.allocatedBytes,
          longFracExamples: ratio.longFractionByExamples,
          longFracTokens: ratio.longFractionByTokens,
        })
        this.flushMetrics(false)
        if (this.faults.delayMs) await new Promise((r) => setTimeout(r, this.faults.delayMs))
        if (s === stage.steps) break
        if (stage.evalEvery > 0 && s % stage.evalEvery === 0) await this.evaluate(k, globalStep, 'interval', stage)
        if ((stage.checkpointEvery > 0 && s % stage.checkpointEvery === 0) || this.control.requested)
          await this.checkpoint(k, s, globalStep, false, sampler.state())
        if (this.control.requested) return this.finishEarly()
      }
      this.flushMetrics(true)
      await this.evaluate(k, globalStep, 'stage-end', stage)
      await this.checkpoint(k, stage.steps, globalStep, true, sampler.state())
      if (this.control.requested && k < plan.stages.length - 1) return this.finishEarly()
    }
    this.sink.send({ type: 'phase', stage: plan.stages.length - 1, step: globalStep, text: 'saving the extended model' })
    await this.saveFinal()
    return { status: 'completed', message: null }
  }

  private finishEarly(): { status: FinishStatus; message: string | null } {
    this.flushMetrics(true)
    return this.control.requested === 'stop'
      ? { status: 'stopped', message: 'Stopped; the last checkpoint is kept.' }
      : { status: 'paused', message: null }
  }

  private nanFailure(stage: number, stageStep: number, step: number, loss: number): RunFailure {
    const s = this.plan.stages[stage]!
    return new RunFailure(
      `The loss became ${loss} at step ${step} (stage ${s.name}, learning rate ${learningRateAt(s.lr, s.steps, stageStep).toPrecision(3)}, ` +
        `peak ${s.lr.peak}): training diverged and the step was not applied. Lower the learning rate (e.g. peak ${s.lr.peak / 2}) ` +
        'or lengthen the warmup, then start the run again.',
    )
  }

  private async poisonWeights(): Promise<void> {
    const p = await this.model!.getParams()
    p.fill(Number.NaN, 0, Math.min(p.length, 1024))
    await this.model!.setParams(p)
  }

  flushMetrics(force: boolean): void {
    const now = performance.now()
    if (this.pending.length === 0 || (!force && now - this.lastFlush < 250)) return
    this.sink.send({ type: 'metrics', points: this.pending })
    this.pending = []
    this.lastFlush = now
  }

  private async baseline(): Promise<void> {
    const plan = this.plan
    const model = this.model!
    const longest = Math.max(plan.baseContext, ...plan.eval.windows, ...(plan.eval.passkey?.lengths ?? []))
    const target = plan.stages[plan.stages.length - 1]!.context
    const reach = Math.min(longest, target)
    this.sink.send({ type: 'phase', stage: -1, step: 0, text: 'baseline evaluation' })
    // Tiling keeps the model bit-for-bit unchanged on windows <= its context (see the top).
    if (reach > model.config.nPositions) await model.extendPositions(reach, 'tile', plan.seed)
    const result = await evaluateModel(model, this.reader, this.tok, plan.eval, {
      maxContext: reach,
      batchTokens: Math.max(reach, plan.stages[0]!.microBatch * plan.stages[0]!.context),
      seed: plan.seed,
    })
    this.sink.send({ type: 'eval', result: { step: 0, stage: -1, label: 'baseline', timeMs: Date.now(), ...result } })
    model.dispose()
    this.model = null
  }

  private async evaluate(stage: number, step: number, label: EvalResult['label'], s: StagePlan): Promise<void> {
    this.flushMetrics(true)
    this.sink.send({ type: 'phase', stage, step, text: `${label === 'stage-end' ? 'stage-end' : 'interval'} evaluation` })
    const result = await evaluateModel(this.model!, this.reader, this.tok, this.plan.eval, {
      maxContext: s.context,
      batchTokens: s.microBatch * s.context,
      seed: this.plan.seed,
    })
    this.sink.send({ type: 'eval', result: { step, stage, label, timeMs: Date.now(), ...result } })
  }

  private async checkpoint(
    stage: number,
    stageStep: number,
    step: number,
    stageEnd: boolean,
    sampler: CheckpointInfo['sampler'],
  ): Promise<void> {
    if (step === this.latestCheckpointStep && !stageEnd) return
    this.flushMetrics(true)
    const base = checkpointBaseName(step)
    const file = `${base}.safetensors`
    const path = join(this.paths.checkpoints, file)
    if (this.faults.enospcAt === step) {
      await writeFile(`${path}.tmp-fault`, Buffer.alloc(4096))
      throw Object.assign(new Error(`ENOSPC: no space left on device, write '${path}'`), { code: 'ENOSPC' })
    }
    await this.model!.saveCheckpoint(path)
    const info: CheckpointInfo = {
      schema: 1,
      file,
      stage,
      stageStep,
      step,
      stageEnd,
      sampler,
      trainMs: this.clock.trainMs,
      timeMs: Date.now(),
      bytes: await fileBytes(path),
    }
    await writeJsonAtomic(join(this.paths.checkpoints, `${base}.json`), info)
    this.latestCheckpointStep = step
    const removed = await pruneCheckpoints(this.job.runDir, this.plan.keepCheckpoints)
    log(`checkpoint ${file} (step ${step}${stageEnd ? ', stage end' : ''})${removed.length ? `; removed ${removed.join(', ')}` : ''}`)
    this.sink.send({ type: 'checkpoint', info, removed })
  }

  private async saveFinal(): Promise<void> {
    const dir = this.paths.final
    const tmp = `${dir}.tmp-${process.pid}`
    await rm(tmp, { recursive: true, force: true })
    await mkdir(tmp, { recursive: true })
    await this.model!.save(tmp)
    const tokFiles = await findTokenizerFiles(this.plan.modelDir)
    for (const f of tokFiles?.files ?? []) await copyFile(join(this.plan.modelDir, f), join(tmp, f))
    await rm(dir, { recursive: true, force: true })
    await rename(tmp, dir)
  }
}
