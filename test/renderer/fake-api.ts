// A test double for the transport: implements the contract's ApiClient with per-method handlers
// and lets a test push events. Stores under test cannot tell it from IPC or HTTP.
import {
  ApiError,
  type ApiClient,
  type ApiEvents,
  type AppInfo,
  type ArgsOf,
  type DatasetPreview,
  type DatasetSummary,
  type EvalResult,
  type MemoryEstimate,
  type MetricPoint,
  type RunPlan,
  type RunSummary,
  type StagePlan,
  type EventName,
  type GpuInfo,
  type MethodName,
  type ModelInfo,
  type ResultOf,
  type Settings,
  type SystemInfo,
} from '@contract'

type Handler<M extends MethodName> = (args: ArgsOf<M>) => ResultOf<M> | Promise<ResultOf<M>>
type Handlers = { [M in MethodName]?: Handler<M> }

export class FakeApi implements ApiClient {
  readonly mode: 'electron' | 'web'
  readonly calls: { name: MethodName; args: unknown }[] = []
  handlers: Handlers = {}
  private listeners = new Map<string, Set<(p: unknown) => void>>()

  constructor(mode: 'electron' | 'web' = 'web', handlers: Handlers = {}) {
    this.mode = mode
    this.handlers = handlers
  }

  async call<M extends MethodName>(name: M, args: ArgsOf<M>): Promise<ResultOf<M>> {
    this.calls.push({ name, args })
    const h = this.handlers[name] as Handler<M> | undefined
    if (!h) throw new ApiError('unknown_method', `fake has no handler for ${name}`)
    return await h(args)
  }

  on<E extends EventName>(event: E, listener: (payload: ApiEvents[E]) => void): () => void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, (set = new Set()))
    const l = listener as (p: unknown) => void
    set.add(l)
    return () => set.delete(l)
  }

  emit<E extends EventName>(event: E, payload: ApiEvents[E]): void {
    for (const l of [...(this.listeners.get(event) ?? [])]) l(payload)
  }

  listenerCount(event: EventName): number {
    return this.listeners.get(event)?.size ?? 0
  }

  callsOf(name: MethodName) {
    return this.calls.filter((c) => c.name === name)
  }
}

/** A promise with its resolve/reject exposed, to control the order answers arrive in. */
export function deferred<T>() {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

export const GiB = 1024 ** 3

export const appInfo: AppInfo = { version: '0.1.0', mode: 'web', platform: 'linux' }

export const settings: Settings = { dataDir: '/home/ann/.local/share/longctx', theme: 'system', backend: 'auto' }

export const gpu: GpuInfo = {
  index: 0,
  name: 'NVIDIA GeForce RTX 4090',
  totalBytes: 24 * GiB,
  usedBytes: 3 * GiB,
  utilizationPct: 12,
  temperatureC: 48,
  powerW: 71,
  driver: '550.54.14',
}

export const systemInfo: SystemInfo = {
  os: 'Linux 6.1.0 (x64)',
  hostname: 'box',
  cpuModel: 'AMD Ryzen 9 7950X',
  cpuCores: 32,
  totalRamBytes: 64 * GiB,
  freeRamBytes: 40 * GiB,
  dataDir: settings.dataDir,
  dataDirFreeBytes: 300 * GiB,
  dataDirTotalBytes: 900 * GiB,
  gpus: [gpu],
  gpuStatus: '1 NVIDIA GPU',
  backends: ['cpu', 'cuda'],
  engineError: null,
}

export const modelInfo: ModelInfo = {
  path: '/models/gpt2',
  architecture: 'GPT2LMHeadModel',
  family: 'gpt2',
  parameters: 124_439_808,
  layers: 12,
  heads: 12,
  width: 768,
  contextLength: 1024,
  vocabSize: 50257,
  attention: Array.from({ length: 12 }, () => 'dense' as const),
  sparse: null,
  tokenizer: { kind: 'vocab.json+merges.txt', files: ['vocab.json', 'merges.txt'] },
  dtype: 'F32',
  sizeOnDiskBytes: 548_105_171,
  files: 5,
}

// ---- datasets and runs ------------------------------------------------------------------------


export const datasetPreview: DatasetPreview = {
  path: '/data/chapters.jsonl',
  format: 'jsonl',
  files: 1,
  totalBytes: 4_370_674,
  ignoredFiles: 0,
  fields: [
    { name: 'title', type: 'string', avgChars: 10 },
    { name: 'text', type: 'string', avgChars: 3600 },
    { name: 'n', type: 'number', avgChars: 0 },
  ],
  textFields: ['text'],
  documents: [{ index: 0, where: 'chapters.jsonl, line 1', chars: 3600, text: 'In the beginning', truncated: true }],
  notes: [],
}

export const datasetSummary: DatasetSummary = {
  id: 'abcdef0123456789',
  name: 'chapters.jsonl',
  createdAt: '2025-11-22T15:00:00.000Z',
  source: { path: '/data/chapters.jsonl', format: 'jsonl', files: 1, bytes: 4_370_674, textFields: ['text'] },
  tokenizer: { hash: 'h', kind: 'tokenizer.json', vocabSize: 50257, modelDir: '/models/gpt2' },
  stats: {
    documents: 1165,
    tokens: 1_000_000,
    total: { documents: 1189, tokens: 1_020_000 },
    heldOut: { documents: 24, tokens: 20_000, windows: { '2048': 5, '4096': 2, '8192': 0, '16384': 0 } },
    lengthHistogram: [
      { label: '<256', minTokens: 0, maxTokens: 256, documents: 10, tokens: 1000 },
      { label: '256-512', minTokens: 256, maxTokens: 512, documents: 0, tokens: 0 },
      { label: '512-1k', minTokens: 512, maxTokens: 1024, documents: 1000, tokens: 700_000 },
      { label: '>=16k', minTokens: 16384, maxTokens: null, documents: 1, tokens: 17_000 },
    ],
    atLeast: {
      '2048': { documents: 40, tokens: 120_000 },
      '4096': { documents: 5, tokens: 30_000 },
      '8192': { documents: 1, tokens: 17_000 },
      '16384': { documents: 1, tokens: 17_000 },
    },
    longestDocumentTokens: 17_000,
    medianDocumentTokens: 700,
    meanDocumentTokens: 858,
    warnings: ['Only 1 training document is at least 8192 tokens long.'],
  },
  sizeOnDiskBytes: 2_100_000,
  importNotes: [],
}

export function stage(name: string, context: number, steps = 10): StagePlan {
  return {
    name,
    context,
    steps,
    tokensPerStep: context * 4,
    microBatch: 2,
    lr: { peak: 3e-4, warmupSteps: 2, minRatio: 0.1 },
    pLong: 0.6,
    packLong: false,
    recompute: false,
    evalEvery: 5,
    checkpointEvery: 5,
  }
}

export const runPlan: RunPlan = {
  schema: 1,
  name: '1k -> 4k',
  modelDir: '/models/gpt2',
  datasetId: datasetSummary.id,
  backend: 'auto',
  baseContext: 1024,
  extendMode: 'tile',
  seed: 1,
  stages: [stage('2k', 2048), stage('4k', 4096)],
  optimizer: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1, masterDtype: 'fp32' },
  eval: {
    windows: [1024, 2048, 4096],
    maxWindowsPerLength: 8,
    slidingStride: null,
    passkey: { lengths: [1024, 4096], depths: [0, 0.5, 1], trials: 2 },
  },
  keepCheckpoints: 2,
}

export const memoryEstimate: MemoryEstimate = {
  device: 'NVIDIA GeForce RTX 4090',
  backend: 'cuda',
  stages: runPlan.stages.map((s, i) => ({
    stage: s.name,
    context: s.context,
    weightsBytes: GiB,
    optimizerBytes: 2 * GiB,
    gradientsBytes: GiB,
    activationsBytes: (i + 1) * 4 * GiB,
    workspaceBytes: GiB / 2,
    totalBytes: 5.5 * GiB + (i + 1) * 4 * GiB,
    availableBytes: 20 * GiB,
    verdict: i === 0 ? 'fits' : 'tight',
  })),
}

export function runSummary(over: Partial<RunSummary> = {}): RunSummary {
  return {
    id: 'run-1',
    name: runPlan.name,
    status: 'running',
    message: null,
    createdMs: 1_000,
    updatedMs: 2_000,
    stageIndex: 0,
    stageCount: 2,
    step: 3,
    totalSteps: 20,
    baseContext: 1024,
    targetContext: 4096,
    modelDir: runPlan.modelDir,
    datasetId: runPlan.datasetId,
    backend: 'cuda',
    lastCheckpoint: null,
    modelSource: null,
    baselinePpl: null,
    latestPpl: null,
    ...over,
  }
}

export function metricPoint(step: number, stage = 0, over: Partial<MetricPoint> = {}): MetricPoint {
  return {
    step,
    stage,
    stageStep: step,
    timeMs: 1_000 + step * 100,
    loss: 3 - step * 0.01,
    lr: 3e-4,
    gradNorm: 1,
    tokensPerSec: 10_000,
    stepMs: 100,
    deviceUsedBytes: 8 * GiB,
    deviceTotalBytes: 24 * GiB,
    engineMappedBytes: 6 * GiB,
    engineAllocatedBytes: 5 * GiB,
    longFracExamples: 0.6,
    longFracTokens: 0.8,
    ...over,
  }
}

export function evalResult(label: EvalResult['label'], stage: number, step: number, ppl: Record<number, number>, over: Partial<EvalResult> = {}): EvalResult {
  return {
    step,
    stage,
    label,
    timeMs: 1_000 + step * 100 + (label === 'stage-end' ? 1 : 0),
    windows: Object.entries(ppl).map(([length, p]) => ({ length: Number(length), ppl: p, nll: Math.log(p), predictions: 1000 })),
    sliding: null,
    passkey: null,
    ...over,
  }
}
