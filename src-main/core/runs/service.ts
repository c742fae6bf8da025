// The runs service behind the API: plans (default, estimate, fit, measure), run folders, and the
// supervision of training workers. Plain TypeScript; the core wires it to the runs.* methods and
// events, and the CLI's `longctx train` uses the same class, so both write the same folders.
//
// State lives on disk (store.ts), so a UI that reconnects (a browser reload in web mode, a new
// window) lists the runs and gets the details again; events keep flowing to any client.
//
// Process model: one worker process per running run (at most one training run at a time per
// service: two runs on one device only slow each other down). The worker writes checkpoints;
// this service writes state.json / metrics.jsonl / evals.jsonl from its messages. A worker that
// exits without saying 'finished' died: the run becomes 'interrupted'. At start, runs whose
// state says 'running' but whose supervisor and worker are gone are marked interrupted too.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { ApiError } from '../../api/errors.ts'
import type { ModelSourceArg } from '../../api/export.ts'
import {
  runPlanSchema,
  type EvalResult,
  type MemoryEstimate,
  type MetricPoint,
  type RunDetail,
  type RunEvents,
  type RunPlan,
  type RunStatus,
  type RunSummary,
  type StageTimeEstimate,
} from '../../api/runs.ts'
import { inspectModel } from '../../engine/inspect.ts'
import { engineCall } from '../../engine/errors.ts'
import { loadNative } from '../../engine/native.ts'
import { importDataset } from '../datasets/import.ts'
import { countHeldOutWindows } from '../datasets/sampler.ts'
import { DatasetReader } from '../datasets/store.ts'
import type { NativeProbe } from '../system-info.ts'
import { loadTokenizer } from '../tokenizer/index.ts'
import { demoPaths, demoPlan, findResourcesDir } from './demo.ts'
import { estimatePlanMemory, fitPlan, NothingFitsError, type DeviceMemory, type ModelShape } from './memory.ts'
import { buildDefaultPlan, targetContext, totalSteps, type DatasetFacts } from './plan.ts'
import {
  appendJsonl,
  filterJsonl,
  latestCheckpoint,
  listCheckpoints,
  readJson,
  readJsonl,
  readState,
  removePartialCheckpoints,
  runPaths,
  STATE_SCHEMA_VERSION,
  writeJsonAtomic,
  type CheckpointInfo,
  type RunState,
} from './store.ts'
import { processAlive, workerAlive, WorkerProcess, type WorkerExit } from './worker-process.ts'
import type { FromWorker } from '../../worker/protocol.ts'

export type RunEmitter = <E extends keyof RunEvents>(event: E, payload: RunEvents[E]) => void

export interface RunServiceOptions {
  runsDir: () => string
  datasetsDir: () => string
  probe: Pick<NativeProbe, 'backends' | 'readGpus'>
  emit: RunEmitter
  // CPU threads of the engine in the worker (0 = all cores); default $LONGCTX_THREADS or 0.
  threads?: number
  // Environment of the worker processes (tests: fault injection).
  workerEnv?: NodeJS.ProcessEnv
  resourcesDir?: string | null
  // How long dispose() waits for running workers to checkpoint and exit.
  disposeTimeoutMs?: number
}

interface LiveRun {
  id: string
  dir: string
  plan: RunPlan
  state: RunState
  worker: WorkerProcess
  requested: 'pause' | 'stop' | null
  queue: Promise<void> // file writes in message order
  lastStateWrite: number
  ended: Promise<RunSummary>
}

const RESUMABLE: RunStatus[] = ['created', 'paused', 'interrupted', 'failed']

export class RunService {
  private readonly live = new Map<string, LiveRun>()
  private demoImport: Promise<string> | null = null

  private constructor(private readonly opts: RunServiceOptions) {}

  static async open(opts: RunServiceOptions): Promise<RunService> {
    const s = new RunService(opts)
    await s.recover()
    return s
  }

  private get threads(): number {
    if (this.opts.threads !== undefined) return this.opts.threads
    const env = Number(process.env.LONGCTX_THREADS)
    return Number.isInteger(env) && env >= 0 ? env : 0
  }

  private runDir(id: string): string {
    return join(this.opts.runsDir(), id)
  }

  // ---- plans ------------------------------------------------------------------------------

  async defaultPlan(args: { modelDir: string; datasetId: string; targetContext?: number }): Promise<RunPlan> {
    const model = await inspectModel(args.modelDir)
    const facts = await this.datasetFacts(args.datasetId, model.path)
    try {
      return buildDefaultPlan(
        { path: model.path, parameters: model.parameters, contextLength: model.contextLength },
        facts,
        { targetContext: args.targetContext },
      )
    } catch (err) {
      if (err instanceof RangeError) throw new ApiError('invalid_argument', `${err.message}.`)
      throw err
    }
  }

  async estimate(plan: RunPlan): Promise<MemoryEstimate> {
    const shape = await this.checkModel(plan)
    return estimatePlanMemory(plan, shape, this.device(plan))
  }

  async fit(plan: RunPlan): Promise<RunPlan> {
    const shape = await this.checkModel(plan)
    try {
      return fitPlan(plan, shape, this.device(plan))
    } catch (err) {
      if (err instanceof NothingFitsError) throw new ApiError('bad_input', err.message)
      throw err
    }
  }

  async measure(plan: RunPlan, steps: number): Promise<StageTimeEstimate[]> {
    await this.checkPlan(plan)
    let stages: StageTimeEstimate[] | null = null
    const worker = WorkerProcess.start(
      { kind: 'measure', plan, datasetsDir: this.opts.datasetsDir(), threads: this.threads, steps },
      {
        logFile: null,
        env: this.opts.workerEnv,
        onMessage: (m) => {
          if (m.type === 'measured') stages = m.stages
        },
      },
    )
    const end = await worker.exited
    if (stages) return stages
    if (end.finished?.message) throw new ApiError('engine', `Measuring the step time failed: ${end.finished.message}`)
    throw new ApiError('engine', `The measuring worker stopped unexpectedly (${describeExit(end)}).`)
  }

  // "New run -> Demo": the bundled corpus imported with the demo model's tokenizer (once; the
  // import is cached by content), and the demo plan.
  async demo(): Promise<RunPlan> {
    const resources = this.opts.resourcesDir === undefined ? findResourcesDir() : this.opts.resourcesDir
    if (!resources) throw new ApiError('not_found', 'The demo model is not installed (resources/demo is missing); reinstall the app.')
    const { modelDir, corpus } = demoPaths(resources)
    this.demoImport ??= importDataset({ path: corpus, modelDir }, { datasetsDir: this.opts.datasetsDir() })
      .then((r) => r.id)
      .finally(() => {
        this.demoImport = null
      })
    const datasetId = await this.demoImport
    const model = await inspectModel(modelDir)
    const facts = await this.datasetFacts(datasetId, model.path)
    return demoPlan({ path: model.path, parameters: model.parameters, contextLength: model.contextLength }, facts)
  }

  private async datasetFacts(datasetId: string, modelDir: string): Promise<DatasetFacts> {
    const reader = await this.openDataset(datasetId)
    try {
      const tok = await loadTokenizer(modelDir).catch(() => null)
      if (tok && tok.hash !== reader.manifest.tokenizer.hash)
        throw new ApiError(
          'bad_input',
          `The dataset ${datasetId} was tokenized with another tokenizer (${reader.manifest.tokenizer.modelDir}); import it again for this model.`,
        )
      return factsOf(reader)
    } finally {
      await reader.close()
    }
  }

  private async openDataset(id: string): Promise<DatasetReader> {
    try {
      return await DatasetReader.open(join(this.opts.datasetsDir(), id))
    } catch {
      throw new ApiError('not_found', `There is no imported dataset "${id}". Import it again (Datasets, or \`longctx dataset import\`).`)
    }
  }

  private async checkModel(plan: RunPlan): Promise<ModelShape> {
    const dir = resolve(plan.modelDir)
    const info = await inspectModel(dir)
    const raw = await engineCall(() => loadNative().inspect(info.path))
    if (info.contextLength !== plan.baseContext)
      throw new ApiError(
        'invalid_argument',
        `The plan's base context (${plan.baseContext}) is not the model's context (${info.contextLength}); make the plan again for this model.`,
      )
    const c = raw.config
    return { vocabSize: c.vocabSize, nEmbd: c.nEmbd, nLayer: c.nLayer, nHead: c.nHead, nInner: c.nInner }
  }

  // Everything a run needs before a worker starts: the model, the dataset (tokenized for this
  // model), evaluation lengths within the target, a backend that exists.
  private async checkPlan(plan: RunPlan): Promise<void> {
    await this.checkModel(plan)
    await this.datasetFacts(plan.datasetId, plan.modelDir)
    const target = targetContext(plan)
    const tooLong = [...plan.eval.windows, ...(plan.eval.passkey?.lengths ?? [])].filter((w) => w > target)
    if (tooLong.length)
      throw new ApiError('invalid_argument', `Evaluation lengths ${tooLong.join(', ')} are longer than the target context (${target}).`)
    if (plan.backend === 'cuda' && !this.cudaUsable())
      throw new ApiError('invalid_argument', 'The plan asks for the CUDA backend but no usable NVIDIA GPU was found; choose "auto" or "cpu".')
  }

  private cudaUsable(): boolean {
    return this.opts.probe.backends.includes('cuda') && this.opts.probe.readGpus().gpus.length > 0
  }

  private device(plan: RunPlan): DeviceMemory {
    const cuda = plan.backend === 'cuda' || (plan.backend === 'auto' && this.cudaUsable())
    if (cuda) {
      const g = this.opts.probe.readGpus().gpus[0]
      if (!g) throw new ApiError('invalid_argument', 'The plan asks for the CUDA backend but no NVIDIA GPU was found; choose "auto" or "cpu".')
      return { backend: 'cuda', name: g.name, freeBytes: Math.max(0, g.totalBytes - g.usedBytes) }
    }
    return { backend: 'cpu', name: 'CPU (RAM)', freeBytes: os.freemem() }
  }

  // ---- runs -------------------------------------------------------------------------------

  async create(plan: RunPlan, start: boolean): Promise<RunSummary> {
    await this.checkPlan(plan)
    if (start) this.assertDeviceFree()
    const id = newRunId(plan.name)
    const dir = this.runDir(id)
    const paths = runPaths(dir)
    await mkdir(paths.checkpoints, { recursive: true })
    await writeJsonAtomic(paths.plan, plan)
    await writeFile(paths.metrics, '')
    await writeFile(paths.evals, '')
    const now = Date.now()
    const state: RunState = {
      schema: STATE_SCHEMA_VERSION,
      id,
      status: 'created',
      message: null,
      createdMs: now,
      updatedMs: now,
      stageIndex: 0,
      step: 0,
      backend: null,
      device: null,
      lastCheckpoint: null,
      workerPid: null,
      supervisorPid: null,
      baselinePpl: null,
      latestPpl: null,
    }
    await writeJsonAtomic(paths.state, state)
    if (!start) {
      const s = summarize(plan, state, dir)
      this.opts.emit('runs.status', s)
      return s
    }
    return this.launch(id, plan, state, null)
  }

  async list(): Promise<RunSummary[]> {
    let names: string[]
    try {
      names = await readdir(this.opts.runsDir())
    } catch {
      return []
    }
    const out: RunSummary[] = []
    for (const name of names) {
      const s = await this.summary(name).catch(() => null)
      if (s) out.push(s)
    }
    return out.sort((a, b) => b.createdMs - a.createdMs)
  }

  async get(id: string, maxPoints: number): Promise<RunDetail> {
    const { plan, state } = await this.load(id)
    const dir = this.runDir(id)
    const paths = runPaths(dir)
    const metrics = downsample(await readJsonl<MetricPoint>(paths.metrics), maxPoints)
    const evals = await readJsonl<EvalResult>(paths.evals)
    const checkpoints = (await listCheckpoints(dir)).map((c) => ({
      path: join(paths.checkpoints, c.file),
      stage: c.stage,
      step: c.step,
      stageEnd: c.stageEnd,
      bytes: c.bytes,
    }))
    return { summary: summarize(plan, state, dir), plan, metrics, evals, checkpoints }
  }

  async pause(id: string): Promise<RunSummary> {
    return this.control(id, 'pause')
  }

  async stop(id: string): Promise<RunSummary> {
    return this.control(id, 'stop')
  }

  private async control(id: string, what: 'pause' | 'stop'): Promise<RunSummary> {
    const run = this.live.get(id)
    if (run) {
      if (run.requested !== 'stop') run.requested = what
      run.worker.send({ type: what })
      run.state.message =
        what === 'pause'
          ? 'Pausing: finishing the current step and saving a checkpoint…'
          : 'Stopping: finishing the current step and saving a checkpoint…'
      return this.publish(run, true)
    }
    const { plan, state } = await this.load(id)
    this.assertNotForeign(state)
    if (what === 'stop' && RESUMABLE.includes(state.status)) {
      state.status = 'stopped'
      state.message = state.lastCheckpoint ? 'Stopped; the last checkpoint is kept.' : 'Stopped before any step was trained.'
      state.updatedMs = Date.now()
      await writeJsonAtomic(runPaths(this.runDir(id)).state, state)
      const s = summarize(plan, state, this.runDir(id))
      this.opts.emit('runs.status', s)
      return s
    }
    if (state.status === 'created' || state.status === 'paused' || state.status === 'interrupted') return summarize(plan, state, this.runDir(id))
    throw new ApiError('busy', `The run is ${state.status}; there is nothing to ${what}.`)
  }

  async resume(id: string): Promise<RunSummary> {
    if (this.live.has(id)) throw new ApiError('busy', 'The run is already running.')
    const { plan, state } = await this.load(id)
    this.assertNotForeign(state)
    if (!RESUMABLE.includes(state.status))
      throw new ApiError('busy', `A ${state.status} run cannot be resumed${state.status === 'stopped' ? ' (stop is final)' : ''}; create a new run from its plan.`)
    if (workerAlive(state.workerPid) && state.workerPid !== process.pid)
      throw new ApiError('busy', `The run's previous worker (pid ${state.workerPid}) is still saving its checkpoint; try again in a moment.`)
    this.assertDeviceFree()
    const dir = this.runDir(id)
    await removePartialCheckpoints(dir)
    const ckpt = await latestCheckpoint(dir)
    // The steps after the checkpoint are trained again: their records go.
    const upTo = ckpt?.step ?? -1
    const paths = runPaths(dir)
    await filterJsonl<MetricPoint>(paths.metrics, (p) => p.step <= upTo)
    await filterJsonl<EvalResult>(paths.evals, (e) => e.step <= upTo)
    const evals = await readJsonl<EvalResult>(paths.evals)
    Object.assign(state, pplOf(evals), {
      step: ckpt?.step ?? 0,
      stageIndex: ckpt ? (ckpt.stageEnd ? Math.min(ckpt.stage + 1, plan.stages.length - 1) : ckpt.stage) : 0,
      lastCheckpoint: ckpt?.file ?? null,
    })
    return this.launch(id, plan, state, ckpt)
  }

  async delete(id: string): Promise<{ deleted: boolean }> {
    const run = this.live.get(id)
    if (run) {
      run.worker.kill('SIGKILL')
      await run.ended.catch(() => undefined)
    } else {
      const state = await readState(this.runDir(id)).catch(() => null)
      if (!state) throw new ApiError('not_found', `There is no run "${id}".`)
      this.assertNotForeign(state)
    }
    await rm(this.runDir(id), { recursive: true, force: true })
    return { deleted: true }
  }

  // Resolves with the final summary when the run's worker has exited (CLI, tests).
  async waitForEnd(id: string): Promise<RunSummary> {
    const run = this.live.get(id)
    if (run) return run.ended
    return (await this.summary(id))!
  }

  isLive(id: string): boolean {
    return this.live.has(id)
  }

  // The app is closing: running workers pause (checkpoint, exit); one still busy after the
  // timeout pauses itself when the IPC channel closes with this process.
  async dispose(): Promise<void> {
    const runs = [...this.live.values()]
    for (const r of runs) {
      r.requested ??= 'pause'
      r.worker.send({ type: 'pause' })
    }
    const timeout = this.opts.disposeTimeoutMs ?? 20_000
    await Promise.race([Promise.all(runs.map((r) => r.ended.catch(() => undefined))), new Promise((r) => setTimeout(r, timeout).unref())])
  }

  // ---- internals ----------------------------------------------------------------------------

  private assertDeviceFree(): void {
    const busy = [...this.live.values()][0]
    if (busy) throw new ApiError('busy', `Run "${busy.plan.name}" is training; pause it first (two runs on one device only slow each other down).`)
  }

  private assertNotForeign(state: RunState): void {
    if (
      state.status === 'running' &&
      state.supervisorPid !== null &&
      state.supervisorPid !== process.pid &&
      processAlive(state.supervisorPid) &&
      workerAlive(state.workerPid)
    )
      throw new ApiError(
        'busy',
        `This run is driven by another process (pid ${state.supervisorPid}, e.g. \`longctx train\` in a terminal); pause it there (Ctrl-C).`,
      )
  }

  private async load(id: string): Promise<{ plan: RunPlan; state: RunState }> {
    const run = this.live.get(id)
    if (run) return { plan: run.plan, state: run.state }
    const dir = this.runDir(id)
    const state = await readState(dir).catch(() => null)
    if (!state) throw new ApiError('not_found', `There is no run "${id}".`)
    const plan = runPlanSchema.parse(await readJson(runPaths(dir).plan))
    return { plan, state }
  }

  private async summary(id: string): Promise<RunSummary | null> {
    const { plan, state } = await this.load(id)
    return summarize(plan, state, this.runDir(id))
  }

  private async recover(): Promise<void> {
    let names: string[]
    try {
      names = await readdir(this.opts.runsDir())
    } catch {
      return
    }
    for (const id of names) {
      const dir = this.runDir(id)
      const state = await readState(dir).catch(() => null)
      if (!state || state.status !== 'running') continue
      const foreign =
        state.supervisorPid !== null && state.supervisorPid !== process.pid && processAlive(state.supervisorPid) && workerAlive(state.workerPid)
      if (foreign) continue
      const ckpt = await latestCheckpoint(dir)
      state.status = 'interrupted'
      state.message =
        'The app (or the training worker) stopped while this run was training. ' +
        (ckpt ? `Resume continues from the checkpoint at step ${ckpt.step}.` : 'No checkpoint was written yet; resume starts it again.')
      state.lastCheckpoint = ckpt?.file ?? null
      state.supervisorPid = null
      // workerPid stays: a worker still finishing its checkpoint blocks a resume until it exits.
      state.updatedMs = Date.now()
      await writeJsonAtomic(runPaths(dir).state, state)
    }
  }

  private launch(id: string, plan: RunPlan, state: RunState, resumeFrom: CheckpointInfo | null): Promise<RunSummary> {
    const dir = this.runDir(id)
    const paths = runPaths(dir)
    let run!: LiveRun
    let endRun!: (s: RunSummary) => void
    const ended = new Promise<RunSummary>((r) => (endRun = r))
    const worker = WorkerProcess.start(
      { kind: 'train', runDir: dir, datasetsDir: this.opts.datasetsDir(), threads: this.threads, resumeFrom },
      {
        logFile: paths.log,
        env: this.opts.workerEnv,
        onMessage: (m) => {
          run.queue = run.queue.then(() => this.onMessage(run, m)).catch((err) => console.error(`run ${id}:`, err))
        },
      },
    )
    Object.assign(state, {
      status: 'running',
      message: resumeFrom ? `Resuming from the checkpoint at step ${resumeFrom.step}…` : 'Starting…',
      workerPid: worker.pid,
      supervisorPid: process.pid,
      updatedMs: Date.now(),
    } satisfies Partial<RunState>)
    run = { id, dir, plan, state, worker, requested: null, queue: Promise.resolve(), lastStateWrite: 0, ended }
    this.live.set(id, run)
    void worker.exited.then((exit) => {
      run.queue = run.queue
        .then(() => this.onExit(run, exit))
        .catch((err) => console.error(`run ${id}:`, err))
        .finally(() => {
          this.live.delete(id)
          endRun(summarize(plan, run.state, run.dir))
        })
    })
    return this.publish(run, true)
  }

  private async onMessage(run: LiveRun, m: FromWorker): Promise<void> {
    const paths = runPaths(run.dir)
    const st = run.state
    switch (m.type) {
      case 'started':
        st.backend = m.backend
        st.device = m.device
        await this.publish(run, true)
        return
      case 'phase':
        if (!run.requested) st.message = `${m.text[0]!.toUpperCase()}${m.text.slice(1)}…`
        st.stageIndex = Math.max(0, m.stage)
        await this.publish(run, false)
        return
      case 'metrics': {
        await appendJsonl(paths.metrics, m.points)
        const last = m.points[m.points.length - 1]!
        st.step = last.step
        st.stageIndex = last.stage
        if (!run.requested) st.message = null
        this.opts.emit('runs.metrics', { runId: run.id, points: m.points })
        await this.publish(run, false)
        return
      }
      case 'eval': {
        await appendJsonl(paths.evals, [m.result])
        Object.assign(st, pplOf(await readJsonl<EvalResult>(paths.evals)))
        this.opts.emit('runs.eval', { runId: run.id, result: m.result })
        await this.publish(run, true)
        return
      }
      case 'checkpoint':
        st.lastCheckpoint = m.info.file
        await this.publish(run, true)
        return
      default:
        return
    }
  }

  private async onExit(run: LiveRun, exit: WorkerExit): Promise<void> {
    const st = run.state
    const f = exit.finished
    if (f) {
      st.status = f.status
      st.message = f.message
      if (f.status === 'completed') {
        st.step = totalSteps(run.plan)
        st.stageIndex = run.plan.stages.length - 1
      }
    } else {
      const ckpt = await latestCheckpoint(run.dir)
      st.status = 'interrupted'
      st.message =
        `The training worker stopped unexpectedly (${describeExit(exit)}). ` +
        (ckpt
          ? `Resume continues from the checkpoint at step ${ckpt.step}; the steps after it are trained again.`
          : 'No checkpoint was written yet; resume starts the run again.') +
        ' The worker\'s output is in worker.log in the run folder.'
      st.lastCheckpoint = ckpt?.file ?? null
    }
    st.workerPid = null
    st.supervisorPid = null
    await this.publish(run, true)
  }

  // Writes state.json (at most once a second unless `force`) and emits the summary.
  private async publish(run: LiveRun, force: boolean): Promise<RunSummary> {
    run.state.updatedMs = Date.now()
    if (force || run.state.updatedMs - run.lastStateWrite >= 1000) {
      run.lastStateWrite = run.state.updatedMs
      await writeJsonAtomic(runPaths(run.dir).state, run.state)
    }
    const s = summarize(run.plan, run.state, run.dir)
    this.opts.emit('runs.status', s)
    return s
  }
}

// ---- helpers ------------------------------------------------------------------------------------

export function factsOf(reader: DatasetReader): DatasetFacts {
  const lengths = reader.lengths
  let trainTokens = 0
  for (const d of reader.train) trainTokens += lengths[d]!
  const long = (n: number) => {
    let docs = 0
    let tokens = 0
    for (const d of reader.train)
      if (lengths[d]! >= n) {
        docs++
        tokens += lengths[d]!
      }
    return { docs, tokens }
  }
  return {
    id: reader.manifest.id,
    trainTokens,
    trainDocuments: reader.train.length,
    longTokens: (n) => long(n).tokens,
    longDocuments: (n) => long(n).docs,
    heldOutWindows: (n) => countHeldOutWindows(reader, n),
  }
}

// `dir` is the run folder: the summary's modelSource points into it.
export function summarize(plan: RunPlan, state: RunState, dir: string): RunSummary {
  return {
    id: state.id,
    name: plan.name,
    status: state.status,
    message: state.message,
    createdMs: state.createdMs,
    updatedMs: state.updatedMs,
    stageIndex: state.stageIndex,
    stageCount: plan.stages.length,
    step: state.step,
    totalSteps: totalSteps(plan),
    baseContext: plan.baseContext,
    targetContext: targetContext(plan),
    modelDir: plan.modelDir,
    datasetId: plan.datasetId,
    backend: state.backend,
    lastCheckpoint: state.lastCheckpoint,
    modelSource: runModelSource(plan, state, dir),
    baselinePpl: state.baselinePpl,
    latestPpl: state.latestPpl,
  }
}

// What export and chat open for a run. final/ only counts once the run completed: the worker
// renames it into place as its last act, so a completed run's final/ is whole. Otherwise the
// checkpoint state.json names is complete (the state is written after the worker reported the
// checkpoint, i.e. after its sidecar); it is checked on disk anyway because pruning or a deleted
// file must not hand out a path that fails to open. Two stats per summary, cheap enough for the
// once-a-second publish.
export function runModelSource(plan: RunPlan, state: RunState, dir: string): ModelSourceArg | null {
  const paths = runPaths(resolve(dir))
  if (state.status === 'completed' && existsSync(join(paths.final, 'config.json'))) return { kind: 'model', path: paths.final }
  if (!state.lastCheckpoint) return null
  const file = join(paths.checkpoints, state.lastCheckpoint)
  if (!existsSync(file) || !existsSync(file.replace(/\.safetensors$/, '.json'))) return null
  return { kind: 'checkpoint', modelDir: resolve(plan.modelDir), checkpoint: file }
}

function pplTable(e: EvalResult): Record<string, number> {
  return Object.fromEntries(e.windows.map((w) => [String(w.length), w.ppl]))
}

export function pplOf(evals: EvalResult[]): Pick<RunState, 'baselinePpl' | 'latestPpl'> {
  const baseline = evals.find((e) => e.label === 'baseline')
  const latest = [...evals].reverse().find((e) => e.label !== 'baseline')
  return { baselinePpl: baseline ? pplTable(baseline) : null, latestPpl: latest ? pplTable(latest) : null }
}

// At most maxPoints points, evenly spread, always with each stage's last point and the very last.
export function downsample(points: MetricPoint[], maxPoints: number): MetricPoint[] {
  if (points.length <= maxPoints) return points
  const every = Math.ceil(points.length / maxPoints)
  return points.filter((p, i) => i % every === 0 || i === points.length - 1 || points[i + 1]!.stage !== p.stage)
}

function describeExit(e: WorkerExit): string {
  if (e.signal) return `killed by ${e.signal}`
  return `exit code ${e.code}`
}

function newRunId(name: string): string {
  const d = new Date()
  const pad = (n: number) => String(n).padStart(2, '0')
  const stamp = `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}-${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}`
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
  return `${stamp}${slug ? `-${slug}` : ''}-${randomBytes(3).toString('hex')}`
}
