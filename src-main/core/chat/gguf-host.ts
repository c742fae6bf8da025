// The GGUF host: a child process (child_process.fork) that runs node-llama-cpp for one chat
// session. It lives apart from the app because llama.cpp ends the whole process with abort()
// on some failures, e.g. GGML_ASSERT in get_rows when a GPT-2 position passes the model's
// position-embedding rows; here that only ends this child, and the app reports it.
//
// Even so the host never lets a sequence grow past the position rows (llama.cpp pads the context
// it creates, e.g. 128 -> 256, so its own limit is not enough): a prompt that does not fit is an
// error, and generation stops when the context is full.
import type { HostGenerateResult, HostLoaded, HostReply, HostRequest } from './gguf-protocol.ts'

type LlamaModule = typeof import('node-llama-cpp')
type Llama = Awaited<ReturnType<LlamaModule['getLlama']>>
type LlamaModel = Awaited<ReturnType<Llama['loadModel']>>
type LlamaContext = Awaited<ReturnType<LlamaModel['createContext']>>
type Sequence = ReturnType<LlamaContext['getSequence']>
// node-llama-cpp brands token ids; over IPC they are plain numbers.
type Token = import('node-llama-cpp').Token
const asTokens = (ids: readonly number[]) => ids as readonly Token[] as Token[]

interface Loaded {
  llama: Llama
  model: LlamaModel
  context: LlamaContext
  sequence: Sequence
  limit: number // tokens a sequence may hold
  unsafe: boolean
  vocabSize: number
}

let state: Loaded | null = null
// generate requests in flight -> stop flag
const running = new Map<number, { stop: boolean }>()
// One request at a time on the sequence: node-llama-cpp sequences are not re-entrant.
let queue: Promise<unknown> = Promise.resolve()

function send(msg: HostReply): void {
  process.send?.(msg)
}

// A nested metadata value by its dotted GGUF key (node-llama-cpp nests "a.b.c" as a -> b -> c).
function metadataValue(meta: unknown, key: string): unknown {
  let at: unknown = meta
  for (const part of key.split('.')) {
    if (typeof at !== 'object' || at === null) return undefined
    at = (at as Record<string, unknown>)[part]
  }
  return at
}

async function load(req: Extract<HostRequest, { op: 'load' }>): Promise<HostLoaded> {
  if (state) throw new Error('a model is already loaded in this host')
  const { getLlama, LlamaLogLevel } = (await import('node-llama-cpp')) as LlamaModule
  const llama = await getLlama({
    gpu: req.gpu,
    // Never compile llama.cpp on a user's machine: the prebuilt binaries ship as npm packages.
    build: 'never',
    logLevel: LlamaLogLevel.warn,
    // llama.cpp's messages go to stderr, which the app keeps the tail of for crash reports.
    logger: (level, message) => process.stderr.write(`[llama.cpp ${level}] ${message}\n`),
  })
  const model = await llama.loadModel({ modelPath: req.path, ...(req.gpu === false ? { gpuLayers: 0 } : {}) })
  const positions = model.trainContextSize
  const unsafe = req.allowBeyondPositions === true
  const wanted = req.contextSize ?? positions
  const limit = unsafe ? wanted : Math.min(wanted, positions)
  // Small models decode fastest on one thread: llama.cpp's workers spin while they wait for each
  // other, and for a few MB of weights that costs more than it saves (measured: 100 tokens of the
  // test fixture took 0.12 s on 1 thread, 21 s on 2 busy cores). Larger models take every core.
  const threads = req.threads ?? (model.size < 256 * 1024 * 1024 ? 1 : llama.cpuMathCores)
  const context = await model.createContext({ contextSize: limit, sequences: 1, threads })
  const sequence = context.getSequence()
  const meta = model.fileInfo.metadata
  const pattern = metadataValue(meta, 'longctx.attention.layer_pattern')
  const exact = metadataValue(meta, 'longctx.attention.dense_runtime_exact')
  const tokens = metadataValue(meta, 'tokenizer.ggml.tokens')
  const name = metadataValue(meta, 'general.name')
  const vocabSize = Array.isArray(tokens) ? tokens.length : 0
  state = { llama, model, context, sequence, limit, unsafe, vocabSize }
  return {
    contextSize: limit,
    trainContextSize: positions,
    vocabSize,
    name: typeof name === 'string' ? name : null,
    eosTokenId: model.tokens.eos ?? null,
    gpu: llama.gpu,
    layerPattern: Array.isArray(pattern) ? pattern.map(String) : null,
    denseRuntimeExact: typeof exact === 'boolean' ? exact : null,
  }
}

function loaded(): Loaded {
  if (!state) throw new Error('no model is loaded')
  return state
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length)
  let i = 0
  while (i < n && a[i] === b[i]) i++
  return i
}

async function generate(req: Extract<HostRequest, { op: 'generate' }>): Promise<HostGenerateResult> {
  const s = loaded()
  const { prompt } = req
  if (prompt.length === 0) throw new Error('the prompt is empty')
  if (!s.unsafe && prompt.length >= s.limit)
    throw new Error(`the prompt has ${prompt.length} tokens but the context holds ${s.limit}; shorten it`)
  const room = s.unsafe ? req.maxTokens : s.limit - prompt.length
  const maxNew = Math.max(0, Math.min(req.maxTokens, room))
  const flag = { stop: false }
  running.set(req.id, flag)
  try {
    // Keep the cached prefix the new prompt shares with the last one (a chat resends its whole
    // history each turn); at least the last prompt token is evaluated again for fresh logits.
    let keep = commonPrefix(s.sequence.contextTokens, prompt)
    if (keep === prompt.length) keep--
    if (keep < s.sequence.nextTokenIndex)
      await s.sequence.eraseContextTokenRanges([{ start: keep, end: s.sequence.nextTokenIndex }])
    const context = [...prompt]
    const sp = req.sampling
    const iterator = s.sequence.evaluate(asTokens(prompt.slice(keep)), {
      temperature: sp.temperature,
      topK: sp.topK,
      topP: sp.topP,
      seed: sp.seed,
      repeatPenalty:
        sp.repetitionPenalty !== 1
          ? { punishTokens: () => asTokens(context), penalty: sp.repetitionPenalty, maxPunishTokens: s.limit, frequencyPenalty: 0, presencePenalty: 0 }
          : undefined,
      yieldEogToken: true,
    })
    let generated = 0
    let stopReason: HostGenerateResult['stopReason'] = 'max_tokens'
    let firstAt = 0
    let lastAt = 0
    // Bytes of a character split across tokens are held until it is whole.
    let pending: number[] = []
    if (maxNew === 0) stopReason = 'context_full'
    else
      for await (const token of iterator) {
        if (flag.stop) {
          stopReason = 'stopped'
          break
        }
        if (req.stopAtEos && s.model.isEogToken(token)) {
          stopReason = 'eos'
          break
        }
        generated++
        context.push(token)
        lastAt = performance.now()
        if (generated === 1) firstAt = lastAt
        pending.push(token)
        const text = s.model.detokenize(asTokens(pending), false)
        if (!text.endsWith('\uFFFD')) {
          send({ op: 'token', id: req.id, tokens: pending, text })
          pending = []
        }
        if (generated >= maxNew) {
          stopReason = req.maxTokens >= room ? 'context_full' : 'max_tokens'
          break
        }
      }
    if (pending.length) send({ op: 'token', id: req.id, tokens: pending, text: s.model.detokenize(asTokens(pending), false) })
    if (flag.stop && stopReason !== 'stopped') stopReason = 'stopped'
    return { stopReason, generated, decodeMs: lastAt - firstAt }
  } finally {
    running.delete(req.id)
  }
}

async function logits(req: Extract<HostRequest, { op: 'logits' }>): Promise<number[][]> {
  const s = loaded()
  // node-llama-cpp shifts the context (drops the oldest tokens) when an evaluation fills it
  // exactly, so a full context's last logits would not be the model's: one token less fits.
  if (!s.unsafe && req.tokens.length >= s.limit)
    throw new Error(`${req.tokens.length} tokens do not fit the context of ${s.limit} (at most ${s.limit - 1} can be scored)`)
  await s.sequence.clearHistory()
  const out = await s.sequence.controlledEvaluate(asTokens(req.tokens).map((t) => [t, { generateNext: { logits: true } }] as [Token, { generateNext: { logits: true } }]))
  return out.map((o) => {
    const map = o?.next.logits
    if (!map) throw new Error('node-llama-cpp returned no logits')
    const row = new Array<number>(s.vocabSize || map.size).fill(-Infinity)
    for (const [id, v] of map) row[id] = v
    return row
  })
}

async function unload(): Promise<void> {
  const s = state
  state = null
  if (!s) return
  await s.context.dispose()
  await s.model.dispose()
  await s.llama.dispose()
}

async function handle(req: HostRequest): Promise<unknown> {
  switch (req.op) {
    case 'load':
      return load(req)
    case 'tokenize':
      // special tokens on: <|endoftext|> in the text is the EOS token, as HF's tokenizer and the engine's read it
      return Array.from(loaded().model.tokenize(req.text, true))
    case 'generate':
      return generate(req)
    case 'logits':
      return logits(req)
    case 'unload':
      return unload()
    case 'stop':
      return undefined // handled on arrival, not queued
  }
}

process.on('message', (raw) => {
  const req = raw as HostRequest
  if (req.op === 'stop') {
    const flag = running.get(req.target)
    if (flag) flag.stop = true
    send({ op: 'result', id: req.id, value: flag !== undefined })
    return
  }
  queue = queue
    .then(() => handle(req))
    .then(
      (value) => send({ op: 'result', id: req.id, value: value ?? null }),
      (e: unknown) => send({ op: 'error', id: req.id, message: e instanceof Error ? e.message : String(e) }),
    )
  if (req.op === 'unload') void queue.then(() => process.exit(0))
})

// The app went away (or closed the channel): nothing else will ever ask this process anything.
process.on('disconnect', () => process.exit(0))

send({ op: 'ready' })
