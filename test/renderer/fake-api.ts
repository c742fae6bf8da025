// A test double for the transport: implements the contract's ApiClient with per-method handlers
// and lets a test push events. Stores under test cannot tell it from IPC or HTTP.
import {
  ApiError,
  type ApiClient,
  type ApiEvents,
  type AppInfo,
  type ArgsOf,
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
