// The two ways a chat session runs a model, behind one interface:
// - native: the engine in this process (a model folder or a checkpoint), with the model's exact
//   attention pattern, sparse layers included; every engine call is async and never aborts;
// - gguf: node-llama-cpp in a child process (gguf-client.ts), which may die without harm.
import type { ChatSource } from '../../api/contract.ts'
import type { EngineGenerator, EngineModel } from '../../engine/model.ts'
import { loadTokenizer, type Tokenizer } from '../tokenizer/index.ts'
import { openModelSource, type BackendPreference, type ModelSource } from '../model-source.ts'
import { DENSE_RUNTIME_WARNING } from '../export/gguf/export-gguf.ts'
import { GgufHost, type GgufCrash } from './gguf-client.ts'

export interface BackendSampling {
  temperature: number
  topK: number
  topP: number
  repetitionPenalty: number
  seed: number
}

export interface GenerateRequest {
  prompt: number[]
  sampling: BackendSampling
  maxTokens: number
  signal: AbortSignal
  // a fixed seed must give the same answer again, so the KV cache is not reused across requests
  deterministic: boolean
}

export interface GenerateOutcome {
  stopReason: 'eos' | 'max_tokens' | 'context_full' | 'stopped'
  generated: number
}

export interface ChatBackend {
  readonly kind: 'native' | 'gguf'
  readonly modelName: string
  readonly contextSize: number
  readonly positionRows: number
  readonly attention: string[] | null
  readonly warnings: string[]
  readonly device: string
  readonly eosTokenId: number | null
  tokenize(text: string): Promise<number[]>
  // onToken gets the new token ids and the text they completed (may be '' mid-character)
  generate(req: GenerateRequest, onToken: (ids: number[], text: string) => void): Promise<GenerateOutcome>
  dispose(): Promise<void>
}

function capContext(requested: number | undefined, positions: number): number {
  return Math.max(2, Math.min(requested ?? positions, positions))
}

export class NativeChatBackend implements ChatBackend {
  readonly kind = 'native'
  #model: EngineModel
  #tokenizer: Tokenizer
  #gen: EngineGenerator | null = null
  #cached: number[] = [] // the tokens in #gen's KV cache
  readonly modelName: string
  readonly contextSize: number
  readonly positionRows: number
  readonly attention: string[]
  readonly warnings: string[] = []
  readonly device: string

  private constructor(model: EngineModel, tokenizer: Tokenizer, name: string, contextSize: number | undefined) {
    this.#model = model
    this.#tokenizer = tokenizer
    const cfg = model.config
    this.modelName = name
    this.positionRows = cfg.nPositions
    this.contextSize = capContext(contextSize, cfg.nPositions)
    this.attention = [...cfg.attention]
    this.device = model.backend === 'cuda' ? 'CUDA' : 'CPU'
  }

  static async open(source: ModelSource, backend: BackendPreference, contextSize?: number): Promise<NativeChatBackend> {
    const opened = await openModelSource(source, backend)
    try {
      const tokenizer = await loadTokenizer(opened.modelDir)
      return new NativeChatBackend(opened.model, tokenizer, opened.name, contextSize)
    } catch (e) {
      opened.model.dispose()
      throw e
    }
  }

  get eosTokenId(): number | null {
    return this.#tokenizer.eosTokenId
  }

  async tokenize(text: string): Promise<number[]> {
    return Array.from(this.#tokenizer.encode(text))
  }

  async generate(req: GenerateRequest, onToken: (ids: number[], text: string) => void): Promise<GenerateOutcome> {
    const { prompt } = req
    if (prompt.length === 0 || prompt.length >= this.contextSize)
      throw new Error(`the prompt has ${prompt.length} tokens; the context holds ${this.contextSize}`)
    this.#gen ??= await this.#model.generator(this.contextSize)
    const gen = this.#gen
    const c = this.#cached
    const reuse = !req.deterministic && c.length < prompt.length && c.length > 0 && c.every((t, i) => prompt[i] === t)
    if (reuse) {
      await gen.feed(prompt.slice(c.length))
    } else {
      await gen.reset()
      await gen.feed(prompt)
    }
    this.#cached = [...prompt]
    const room = this.contextSize - prompt.length
    const maxNew = Math.min(req.maxTokens, room)
    const decoder = this.#tokenizer.createDecoder()
    const eos = this.#tokenizer.eosTokenId
    let generated = 0
    try {
      while (generated < maxNew) {
        if (req.signal.aborted) return { stopReason: 'stopped', generated }
        const id = await gen.next(req.sampling)
        this.#cached.push(id)
        if (id === eos) return { stopReason: 'eos', generated }
        generated++
        onToken([id], decoder.push(id))
      }
    } catch (e) {
      // A failed step leaves the cache in an unknown state: start from scratch next time.
      this.#cached = []
      throw e
    } finally {
      const rest = decoder.flush()
      if (rest) onToken([], rest)
    }
    return { stopReason: req.maxTokens >= room ? 'context_full' : 'max_tokens', generated }
  }

  async dispose(): Promise<void> {
    this.#gen?.dispose()
    this.#gen = null
    this.#model.dispose()
  }
}

export interface GgufBackendOptions {
  gpu: 'auto' | false
  contextSize?: number
  threads?: number
  allowBeyondPositions?: boolean
}

export class GgufChatBackend implements ChatBackend {
  readonly kind = 'gguf'
  #host: GgufHost
  readonly modelName: string
  readonly contextSize: number
  readonly positionRows: number
  readonly attention: string[] | null
  readonly warnings: string[] = []
  readonly device: string
  readonly eosTokenId: number | null

  private constructor(host: GgufHost) {
    this.#host = host
    const l = host.loaded
    this.modelName = l.name ?? 'GGUF model'
    this.contextSize = l.contextSize
    this.positionRows = l.trainContextSize
    this.attention = l.layerPattern
    this.device = l.gpu === false ? 'CPU (llama.cpp)' : `${String(l.gpu).toUpperCase()} (llama.cpp)`
    this.eosTokenId = l.eosTokenId
    if (l.denseRuntimeExact === false) this.warnings.push(DENSE_RUNTIME_WARNING)
  }

  static async open(path: string, opts: GgufBackendOptions): Promise<GgufChatBackend> {
    const host = await GgufHost.start({ path, ...opts })
    return new GgufChatBackend(host)
  }

  onCrash(listener: (c: GgufCrash) => void): () => void {
    return this.#host.onCrash(listener)
  }

  get alive(): boolean {
    return this.#host.alive
  }

  get pid(): number | undefined {
    return this.#host.pid
  }

  tokenize(text: string): Promise<number[]> {
    return this.#host.tokenize(text)
  }

  async generate(req: GenerateRequest, onToken: (ids: number[], text: string) => void): Promise<GenerateOutcome> {
    const run = this.#host.generate(req.prompt, req.sampling, req.maxTokens, onToken)
    const onAbort = () => run.stop()
    req.signal.addEventListener('abort', onAbort, { once: true })
    try {
      const r = await run.done
      return { stopReason: r.stopReason, generated: r.generated }
    } finally {
      req.signal.removeEventListener('abort', onAbort)
    }
  }

  logits(tokens: number[]): Promise<number[][]> {
    return this.#host.logits(tokens)
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.#host.kill(signal)
  }

  async dispose(): Promise<void> {
    await this.#host.dispose()
  }
}

export async function openChatBackend(
  source: ChatSource,
  opts: { backend: BackendPreference; gguf: GgufBackendOptions; contextSize?: number },
): Promise<ChatBackend> {
  if (source.kind === 'gguf')
    return GgufChatBackend.open(source.path, { ...opts.gguf, ...(opts.contextSize !== undefined ? { contextSize: opts.contextSize } : {}) })
  return NativeChatBackend.open(source, opts.backend, opts.contextSize)
}
