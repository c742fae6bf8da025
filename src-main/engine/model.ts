// EngineModel / EngineGenerator: the typed face of the native engine for the rest of the app
// (worker, CLI, tests). The native handle stays private; every failure comes out as an
// EngineError (errors.ts); dispose() is idempotent and any use afterwards throws.
import {
  loadNative,
  type ExtendMode,
  type NativeAttention,
  type NativeBackend,
  type NativeBatch,
  type NativeConfig,
  type NativeConfigInput,
  type NativeGenerator,
  type NativeMemoryStats,
  type NativeModel,
  type NativeSampling,
  type NativeTrainConfig,
} from './native.ts'
import { EngineError, engineCall, engineCallSync } from './errors.ts'

export type { ExtendMode, NativeAttention as AttentionPattern, NativeBackend as Backend }
export type ModelConfig = NativeConfig
export type ModelConfigInput = NativeConfigInput
export type TrainConfig = NativeTrainConfig
export type Sampling = NativeSampling
export type MemoryStats = NativeMemoryStats

type Ids = Int32Array | ArrayLike<number>

// A batch of B rows of T tokens, row-major; plain arrays are accepted and converted.
export interface Batch {
  tokens: Ids
  targets?: Ids | null // next-token ids, -1 = not scored
  segments?: Ids | null // document ids inside packed rows
  B: number
  T: number
}

export interface ForwardResult {
  loss?: number
  nll?: Float32Array
  logits?: Float32Array
}

// The subset of the tokenizer (src-main/core/tokenizer) that generation needs.
export interface GenerationTokenizer {
  encode(text: string): ArrayLike<number>
  createDecoder(): { push(id: number): string; flush(): string }
  readonly eosTokenId: number | null
}

export interface GenerateOptions extends Sampling {
  maxTokens?: number // new tokens at most (default 128); also capped by the context
  stopAtEos?: boolean // default true
  signal?: AbortSignal
}

function toInt32(a: Ids): Int32Array {
  return a instanceof Int32Array ? a : Int32Array.from(a)
}

function nativeBatch(b: Batch): NativeBatch {
  return {
    tokens: toInt32(b.tokens),
    targets: b.targets == null ? null : toInt32(b.targets),
    segments: b.segments == null ? null : toInt32(b.segments),
    B: b.B,
    T: b.T,
  }
}

function disposedError(what: string): EngineError {
  return new EngineError('engine', `this ${what} was disposed`, 'LCX_ERR_DISPOSED', `this ${what} was disposed`)
}

export class EngineModel {
  #native: NativeModel | null

  private constructor(native: NativeModel) {
    this.#native = native
  }

  // Loads an HF model folder (config.json + safetensors).
  static async load(dir: string, opts: { backend?: NativeBackend } = {}): Promise<EngineModel> {
    return new EngineModel(await engineCall(() => loadNative().Model.load(dir, opts.backend ?? 'cpu')))
  }

  // A freshly initialised model (GPT-2 init), deterministic for a seed.
  static async create(config: ModelConfigInput, seed: number | bigint = 0, backend: NativeBackend = 'cpu'): Promise<EngineModel> {
    return new EngineModel(await engineCall(() => loadNative().Model.create(config, seed, backend)))
  }

  get #live(): NativeModel {
    if (!this.#native) throw disposedError('model')
    return this.#native
  }

  get disposed(): boolean {
    return this.#native === null
  }
  get config(): ModelConfig {
    return engineCallSync(() => this.#live.config)
  }
  get backend(): NativeBackend {
    return engineCallSync(() => this.#live.backend)
  }
  // Floats in the canonical parameter layout (tied lm_head counted once).
  get paramCount(): number {
    return engineCallSync(() => this.#live.paramCount)
  }
  get optimizerSteps(): number {
    return engineCallSync(() => this.#live.optimizerSteps)
  }

  // Writes config.json + model.safetensors (sharded above maxShardBytes) in the HF layout.
  save(dir: string, opts: { maxShardBytes?: number } = {}): Promise<void> {
    return engineCall(() => this.#live.save(dir, opts.maxShardBytes ?? 0))
  }
  getParams(): Promise<Float32Array> {
    return engineCall(() => this.#live.getParams())
  }
  setParams(params: Float32Array): Promise<void> {
    return engineCall(() => this.#live.setParams(params))
  }
  getGrads(): Promise<Float32Array> {
    return engineCall(() => this.#live.getGrads())
  }
  // Grows the position table to n rows; 'tile' keeps the model exact on sequences <= n_old.
  extendPositions(n: number, mode: ExtendMode = 'tile', seed: number | bigint = 0): Promise<void> {
    return engineCall(() => this.#live.extendPositions(n, mode, seed))
  }
  setAttention(layer: number, pattern: NativeAttention): Promise<void> {
    return engineCall(() => this.#live.setAttention(layer, pattern))
  }

  forward(batch: Batch, want: { nll?: boolean; logits?: boolean } = {}): Promise<ForwardResult> {
    return engineCall(() => this.#live.forward(nativeBatch(batch), want))
  }

  trainInit(cfg: TrainConfig = {}): Promise<void> {
    return engineCall(() => this.#live.trainInit(cfg))
  }
  zeroGrad(): Promise<void> {
    return engineCall(() => this.#live.zeroGrad())
  }
  // Adds gradScale * d(mean loss)/dparams to the gradients; resolves to the loss.
  forwardBackward(batch: Batch, gradScale = 1): Promise<number> {
    return engineCall(() => this.#live.forwardBackward(nativeBatch(batch), gradScale))
  }
  // Clip + AdamW; resolves to the gradient norm before clipping.
  optimizerStep(lr: number): Promise<number> {
    return engineCall(() => this.#live.optimizerStep(lr))
  }
  saveCheckpoint(path: string): Promise<void> {
    return engineCall(() => this.#live.saveCheckpoint(path))
  }
  loadCheckpoint(path: string): Promise<void> {
    return engineCall(() => this.#live.loadCheckpoint(path))
  }
  memoryStats(): Promise<MemoryStats> {
    return engineCall(() => this.#live.memoryStats())
  }
  resetPeakMemory(): Promise<void> {
    return engineCall(() => this.#live.resetPeakMemory())
  }

  // A KV cache for up to maxTokens tokens (<= nPositions).
  async generator(maxTokens: number): Promise<EngineGenerator> {
    const native = await engineCall(() => this.#live.createGenerator(maxTokens))
    return new EngineGenerator(native)
  }

  // Streams new token ids after the prompt ids. Stops at maxTokens, at the end of the context,
  // at EOS (when eosTokenId is given and stopAtEos) or when the signal aborts.
  async *generateTokens(
    prompt: ArrayLike<number>,
    opts: GenerateOptions & { eosTokenId?: number | null } = {},
  ): AsyncGenerator<number, void, undefined> {
    const nPositions = this.config.nPositions
    if (prompt.length === 0) throw new EngineError('bad_input', 'the prompt is empty', 'LCX_ERR_ARG', 'empty prompt')
    if (prompt.length >= nPositions)
      throw new EngineError(
        'bad_input',
        `the prompt has ${prompt.length} tokens but the model's context is ${nPositions}; shorten the prompt`,
        'LCX_ERR_ARG',
        'prompt longer than the context',
      )
    const maxNew = Math.max(0, Math.min(opts.maxTokens ?? 128, nPositions - prompt.length))
    if (maxNew === 0) return
    const gen = await this.generator(prompt.length + maxNew)
    try {
      await gen.feed(prompt)
      const sampling: Sampling = {
        temperature: opts.temperature ?? 0,
        topK: opts.topK ?? 0,
        topP: opts.topP ?? 1,
        repetitionPenalty: opts.repetitionPenalty ?? 1,
        seed: opts.seed ?? 0,
      }
      for (let i = 0; i < maxNew; i++) {
        if (opts.signal?.aborted) return
        const id = await gen.next(sampling)
        if ((opts.stopAtEos ?? true) && opts.eosTokenId != null && id === opts.eosTokenId) return
        yield id
      }
    } finally {
      gen.dispose()
    }
  }

  // Streams text pieces; a piece may be empty-held until a multi-byte character completes.
  async *generate(tokenizer: GenerationTokenizer, prompt: string, opts: GenerateOptions = {}): AsyncGenerator<string, void, undefined> {
    let ids = Array.from(tokenizer.encode(prompt))
    // GPT-2 models start documents after <|endoftext|>; an empty prompt starts there too.
    if (ids.length === 0 && tokenizer.eosTokenId != null) ids = [tokenizer.eosTokenId]
    const decoder = tokenizer.createDecoder()
    for await (const id of this.generateTokens(ids, { ...opts, eosTokenId: tokenizer.eosTokenId })) {
      const piece = decoder.push(id)
      if (piece) yield piece
    }
    const rest = decoder.flush()
    if (rest) yield rest
  }

  // Frees native memory (after calls already queued); idempotent.
  dispose(): void {
    const n = this.#native
    this.#native = null
    n?.dispose()
  }
  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose()
  }
}

export class EngineGenerator {
  #native: NativeGenerator | null

  // Created by EngineModel.generator().
  constructor(native: NativeGenerator) {
    this.#native = native
  }

  get #live(): NativeGenerator {
    if (!this.#native || this.#native.disposed) throw disposedError('generator')
    return this.#native
  }

  get disposed(): boolean {
    return this.#native === null || this.#native.disposed
  }
  get length(): number {
    return this.#native?.length ?? 0
  }
  get capacity(): number {
    return this.#native?.capacity ?? 0
  }

  // Appends tokens to the cache; the last token's logits when wantLogits.
  feed(tokens: Ids, wantLogits = false): Promise<Float32Array | null> {
    return engineCall(() => this.#live.feed(toInt32(tokens), wantLogits))
  }
  next(sampling: Sampling = {}): Promise<number> {
    return engineCall(() => this.#live.next(sampling))
  }
  reset(): Promise<void> {
    return engineCall(() => this.#live.reset())
  }
  dispose(): void {
    const n = this.#native
    this.#native = null
    n?.dispose()
  }
  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose()
  }
}
