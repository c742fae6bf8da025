// The whole surface of the native addon (native/addon/*.cpp), declared by hand in one place,
// and the loader of the .node file. Nothing else in the app imports the addon directly: the
// typed wrappers in model.ts / inspect.ts sit on top of this.
//
// Conventions of the addon: every slow call returns a Promise (it runs on a libuv worker thread
// behind a per-model FIFO); typed arrays going in are copied before the call is queued; errors
// are Error objects with `code` set to the engine's status name (LcxErrorCode).
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export type NativeBackend = 'cpu' | 'cuda'
export type NativeArch = 'gpt2' | 'rugpt3xl'
// One per layer: dense causal, DeepSpeed fixed block-sparse, or a sliding window of N tokens.
export type NativeAttention = 'dense' | 'sparse' | `window:${number}`
export type ExtendMode = 'tile' | 'interpolate' | 'random'

export type LcxErrorCode =
  | 'LCX_ERR_ARG'
  | 'LCX_ERR_IO'
  | 'LCX_ERR_FORMAT'
  | 'LCX_ERR_SHAPE'
  | 'LCX_ERR_DTYPE'
  | 'LCX_ERR_UNSUPPORTED'
  | 'LCX_ERR_OOM'
  | 'LCX_ERR_BACKEND'
  | 'LCX_ERR_NUMERIC'
  | 'LCX_ERR_INTERNAL'
  // raised by the addon itself: a call on a disposed model or generator
  | 'LCX_ERR_DISPOSED'

export interface NativeError extends Error {
  code: LcxErrorCode
}

// DeepSpeed FixedSparsityConfig, same names and meaning.
export interface NativeSparseConfig {
  block: number
  numLocalBlocks: number
  numGlobalBlocks: number
  differentLayoutPerHead: boolean
  numDifferentGlobalPatterns: number
  unidirectional: boolean
  horizontalGlobalAttention: boolean
}

// lcx_config. As returned by the addon every field is present.
export interface NativeConfig {
  arch: NativeArch
  vocabSize: number
  nPositions: number
  nEmbd: number
  nLayer: number
  nHead: number
  nInner: number
  layerNormEps: number
  attention: NativeAttention[]
  sparse: NativeSparseConfig
}

// What Model.create / paramLayout accept: defaults are arch 'gpt2', nInner 4*nEmbd,
// layerNormEps 1e-5, all layers dense, ruGPT3XL's sparse settings (block 16, 8 local / 1 global
// blocks, different layout per head, 8 global patterns, unidirectional).
export type NativeConfigInput = Pick<NativeConfig, 'vocabSize' | 'nPositions' | 'nEmbd' | 'nLayer' | 'nHead'> &
  Partial<Omit<NativeConfig, 'sparse'>> & { sparse?: Partial<NativeSparseConfig> }

// (B, T) row-major. targets: next-token ids, -1 = not scored. segments: document ids inside a
// packed row (a token attends only within its document; positions restart at each document).
export interface NativeBatch {
  tokens: Int32Array
  targets?: Int32Array | null
  segments?: Int32Array | null
  B: number
  T: number
}

export interface NativeForwardResult {
  loss?: number // mean NLL over scored tokens; present when targets were given
  nll?: Float32Array // (B*T), 0 where the target is -1
  logits?: Float32Array // (B*T*V)
}

export interface NativeTrainConfig {
  beta1?: number // default 0.9
  beta2?: number // default 0.95
  eps?: number // default 1e-8
  weightDecay?: number // default 0.1, on 2-D tensors only
  gradClip?: number // global-norm clip, <= 0 = off; default 1
  recompute?: boolean // activation recompute (CUDA)
  masterDtype?: 'fp32' | 'bf16'
  // 'bf16': the layers' four weight matrices keep bf16 gradients (CUDA; 2 bytes per parameter
  // less, one rounding per micro-batch, so for steps of one micro-batch). Default 'fp32'.
  gradDtype?: 'fp32' | 'bf16'
  seed?: number | bigint
}

export interface NativeSampling {
  temperature?: number // 0 (default) = greedy
  topK?: number // 0 = off
  topP?: number // 1 = off
  repetitionPenalty?: number // 1 = off
  seed?: number | bigint
}

export interface NativeMemoryStats {
  allocatedBytes: number
  mappedBytes: number
  peakAllocatedBytes: number
  peakMappedBytes: number
  reservedVaBytes: number
  fragmentation: number
  expandable: boolean
}

// lcx_model_info: what lcx_inspect reads from config.json and the safetensors headers.
export interface NativeModelInfo {
  config: NativeConfig
  parameters: number
  bytesOnDisk: number
  numFiles: number
  dtype: string // F32 | F16 | BF16 | mixed
  architecture: string // config.json architectures[0] (or model_type)
}

export interface NativeParamLayout {
  tensors: Array<{ name: string; offset: number; count: number }> // canonical order, in floats
  total: number
}

export interface NativeModel {
  readonly config: NativeConfig
  readonly backend: NativeBackend
  readonly paramCount: number
  readonly optimizerSteps: number
  readonly disposed: boolean
  save(dir: string, maxShardBytes?: number): Promise<void>
  getParams(): Promise<Float32Array>
  setParams(params: Float32Array): Promise<void>
  getGrads(): Promise<Float32Array>
  setAttention(layer: number, pattern: NativeAttention): Promise<void>
  extendPositions(nPositions: number, mode?: ExtendMode, seed?: number | bigint): Promise<void>
  forward(batch: NativeBatch, want?: { nll?: boolean; logits?: boolean }): Promise<NativeForwardResult>
  trainInit(config?: NativeTrainConfig): Promise<void>
  zeroGrad(): Promise<void>
  forwardBackward(batch: NativeBatch, gradScale?: number): Promise<number>
  optimizerStep(lr: number): Promise<number>
  saveCheckpoint(path: string): Promise<void>
  loadCheckpoint(path: string): Promise<void>
  memoryStats(): Promise<NativeMemoryStats>
  resetPeakMemory(): Promise<void>
  createGenerator(maxTokens: number): Promise<NativeGenerator>
  // Frees native memory once the calls already queued have finished; idempotent.
  dispose(): void
}

export interface NativeModelClass {
  load(dir: string, backend?: NativeBackend): Promise<NativeModel>
  create(config: NativeConfigInput, seed?: number | bigint, backend?: NativeBackend): Promise<NativeModel>
}

// A KV cache for one sequence; its calls queue behind the model's.
export interface NativeGenerator {
  readonly length: number // tokens in the cache after the last completed call
  readonly capacity: number
  readonly disposed: boolean
  // Appends tokens; resolves to the last token's logits (V floats) when wantLogits.
  feed(tokens: Int32Array, wantLogits?: boolean): Promise<Float32Array | null>
  // Samples from the last logits, appends the token, resolves to it.
  next(sampling?: NativeSampling): Promise<number>
  reset(): Promise<void>
  dispose(): void
}

export interface NvmlGpu {
  index: number
  name: string
  totalBytes: number
  usedBytes: number
  utilizationPct: number | null
  temperatureC: number | null
  powerW: number | null
}

export type NvmlReading = { ok: false; reason: string } | { ok: true; driver: string; gpus: NvmlGpu[] }

export interface NativeAddon {
  Model: NativeModelClass
  inspect(dir: string): Promise<NativeModelInfo>
  backendsAvailable(): NativeBackend[]
  setNumThreads(n: number): void // CPU backend; 0 = all cores
  getNumThreads(): number
  paramLayout(config: NativeConfigInput): NativeParamLayout
  cudaSetAllocator(expandable: boolean): void // for CUDA models created afterwards
  nvmlQuery(): NvmlReading // synchronous, well under a millisecond per GPU
}

// ---- loading -----------------------------------------------------------------------------

const ADDON_RELATIVE = path.join('native', 'build', 'addon', 'Release', 'longctx_addon.node')

// Where the .node file is: $LONGCTX_ADDON, else native/build/addon/Release under the first
// ancestor of this module that has it (the source tree when run through tsx, and the checkout
// when run from electron-vite's out/ folder).
export function addonCandidates(): string[] {
  const out: string[] = []
  if (process.env.LONGCTX_ADDON) out.push(path.resolve(process.env.LONGCTX_ADDON))
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    out.push(path.join(dir, ADDON_RELATIVE))
    const parent = path.dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  return out
}

let cached: NativeAddon | null = null
let cachedError: Error | null = null

export class NativeLoadError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'NativeLoadError'
  }
}

// The addon, loaded once. Throws NativeLoadError with what to do when it is not built.
export function loadNative(): NativeAddon {
  if (cached) return cached
  if (cachedError) throw cachedError
  const candidates = addonCandidates()
  const found = candidates.find((p) => existsSync(p))
  if (!found) {
    cachedError = new NativeLoadError(
      'the native engine is not built (no longctx_addon.node in native/build/addon/Release): run `npm run build:native`',
    )
    throw cachedError
  }
  try {
    const require = createRequire(import.meta.url)
    cached = require(found) as NativeAddon
    return cached
  } catch (e) {
    cachedError = new NativeLoadError(
      `the native engine at ${found} could not be loaded (${(e as Error).message}); run \`npm run build:native -- --clean\``,
    )
    throw cachedError
  }
}

// For places that must work without the engine (system panel): the addon or why not.
export function tryLoadNative(): { addon: NativeAddon | null; error: string | null } {
  try {
    return { addon: loadNative(), error: null }
  } catch (e) {
    return { addon: null, error: (e as Error).message }
  }
}

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string' && (e as NativeError).code.startsWith('LCX_')
}
