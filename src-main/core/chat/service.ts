// Chat sessions for the API. A session is one loaded model (native engine or GGUF child); a
// request streams its answer as 'chat.token' events, coalesced to about 20 a second so a fast
// small model does not flood the renderer. The service keeps no conversation: the renderer sends
// the whole conversation each time (regenerate = the same conversation again), and the session
// fits it to the context by the chosen policy.
import { randomInt, randomUUID } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import {
  ApiError,
  type ChatDocument,
  type ChatSendResult,
  type ChatSessionInfo,
  type ChatStopReason,
  type ChatTokenEvent,
  type ParsedArgsOf,
} from '../../api/contract.ts'
import { asApiError } from '../api-errors.ts'
import type { BackendPreference } from '../model-source.ts'
import { GgufChatBackend, openChatBackend, type ChatBackend, type GgufBackendOptions } from './backends.ts'
import { answerReserve, CHAT_STOP_SEQUENCES, fitChat, fitCompletion, StopMatcher } from './prompt.ts'

const EMIT_INTERVAL_MS = 50
// The document travels with every chat.send, and web mode takes request bodies up to 1 MiB;
// 512 KiB of text is about 130k tokens, more than any context these models have.
const MAX_DOCUMENT_BYTES = 512 * 1024

export interface ChatServiceOptions {
  emitToken: (e: ChatTokenEvent) => void
  emitSession: (info: ChatSessionInfo) => void
  backend: () => BackendPreference // the Settings choice, read at load time
  gguf?: () => Partial<GgufBackendOptions> // e.g. tests force the CPU or allow the abort
}

interface Running {
  requestId: string
  abort: AbortController
  done: Promise<void>
}

interface Session {
  info: ChatSessionInfo
  backend: ChatBackend | null
  loadArgs: ParsedArgsOf<'chat.load'>
  running: Running | null
  // the request the crash interrupted, to close its stream
  stopCrash?: () => void
}

export class ChatService {
  private readonly sessions = new Map<string, Session>()

  constructor(private readonly opts: ChatServiceOptions) {}

  private ggufOptions(): GgufBackendOptions {
    const gpu = this.opts.backend() === 'cpu' ? false : 'auto'
    return { gpu, ...this.opts.gguf?.() }
  }

  private describe(id: string, backend: ChatBackend, args: ParsedArgsOf<'chat.load'>): ChatSessionInfo {
    return {
      sessionId: id,
      source: args.source,
      backend: backend.kind,
      modelName: backend.modelName,
      contextSize: backend.contextSize,
      positionRows: backend.positionRows,
      attention: backend.attention,
      warnings: [...backend.warnings],
      device: backend.device,
      state: 'ready',
      crash: null,
    }
  }

  private async openBackend(args: ParsedArgsOf<'chat.load'>): Promise<ChatBackend> {
    try {
      return await openChatBackend(args.source, { backend: this.opts.backend(), gguf: this.ggufOptions(), contextSize: args.contextSize })
    } catch (e) {
      const err = asApiError(e)
      if (args.source.kind === 'gguf' && err.code === 'internal')
        throw new ApiError('bad_input', `node-llama-cpp could not load ${args.source.path}: ${(e as Error).message}`)
      throw err
    }
  }

  private attach(id: string, session: Session, backend: ChatBackend): void {
    session.backend = backend
    session.info = this.describe(id, backend, session.loadArgs)
    if (backend instanceof GgufChatBackend) {
      backend.onCrash((crash) => {
        if (session.backend !== backend) return
        session.info = { ...session.info, state: 'crashed', crash: crash.message }
        session.stopCrash?.()
        this.opts.emitSession(session.info)
      })
    }
  }

  async load(args: ParsedArgsOf<'chat.load'>): Promise<ChatSessionInfo> {
    const backend = await this.openBackend(args)
    const id = randomUUID()
    const session: Session = { info: this.describe(id, backend, args), backend: null, loadArgs: args, running: null }
    this.attach(id, session, backend)
    this.sessions.set(id, session)
    return session.info
  }

  private session(id: string): Session {
    const s = this.sessions.get(id)
    if (!s) throw new ApiError('not_found', `There is no chat session ${id}; load the model again.`)
    return s
  }

  private liveBackend(s: Session): ChatBackend {
    if (s.info.state === 'crashed' || !s.backend)
      throw new ApiError('engine', `${s.info.crash ?? 'The model process stopped.'} Press Restart to load the model again.`)
    return s.backend
  }

  async send(args: ParsedArgsOf<'chat.send'>): Promise<ChatSendResult> {
    const s = this.session(args.sessionId)
    const backend = this.liveBackend(s)
    await this.stopRunning(s) // a newer request replaces the running one (regenerate, resend)
    const sampling = args.sampling
    const reserve = answerReserve(sampling.maxTokens, backend.contextSize)
    const tokenize = (t: string) => backend.tokenize(t)
    let fitted
    let stops: string[] = []
    try {
      if (args.format === 'chat') {
        if (!args.messages?.length) throw new ApiError('invalid_argument', 'chat.send in chat format needs messages.')
        fitted = await fitChat(args.messages, tokenize, backend.contextSize, reserve, args.policy)
        stops = CHAT_STOP_SEQUENCES
      } else {
        if (args.prompt === undefined) throw new ApiError('invalid_argument', 'chat.send in completion format needs a prompt.')
        fitted = await fitCompletion(args.prompt, tokenize, backend.contextSize, reserve, args.policy, backend.eosTokenId)
      }
    } catch (e) {
      throw asApiError(e)
    }
    const seed = sampling.seed ?? randomInt(0, 2 ** 47)
    const requestId = randomUUID()
    const abort = new AbortController()
    const promptTokens = fitted.tokens.length
    const contextSize = backend.contextSize

    const startedAt = performance.now()
    let firstAt: number | null = null
    let lastAt = 0
    let generated = 0
    let pendingText = ''
    let lastEmit = 0
    let finished = false
    const matcher = new StopMatcher(stops)
    const event = (done: boolean, stopReason: ChatStopReason | null, error: string | null): ChatTokenEvent => ({
      sessionId: args.sessionId,
      requestId,
      text: pendingText,
      tokens: generated,
      tokensPerSec: firstAt !== null && generated > 1 && lastAt > firstAt ? ((generated - 1) * 1000) / (lastAt - firstAt) : null,
      timeToFirstTokenMs: firstAt !== null ? firstAt - startedAt : null,
      contextUsed: promptTokens + generated,
      contextSize,
      done,
      stopReason,
      error,
    })
    const flush = (force: boolean) => {
      const now = performance.now()
      if (!force && (pendingText === '' || now - lastEmit < EMIT_INTERVAL_MS)) return
      this.opts.emitToken(event(false, null, null))
      pendingText = ''
      lastEmit = now
    }
    const finish = (stopReason: ChatStopReason, error: string | null) => {
      if (finished) return
      finished = true
      pendingText += matcher.flush()
      this.opts.emitToken(event(true, stopReason, error))
      pendingText = ''
    }
    s.stopCrash = () => finish('crashed', s.info.crash)

    s.info = { ...s.info, state: 'generating' }
    const done = (async () => {
      try {
        const outcome = await backend.generate(
          {
            prompt: fitted.tokens,
            maxTokens: sampling.maxTokens,
            signal: abort.signal,
            deterministic: sampling.seed !== null,
            sampling: {
              temperature: sampling.temperature,
              topK: sampling.topK,
              topP: sampling.topP,
              repetitionPenalty: sampling.repetitionPenalty,
              seed,
            },
          },
          (ids, text) => {
            if (finished) return
            if (ids.length) {
              generated += ids.length
              lastAt = performance.now()
              firstAt ??= lastAt
            }
            pendingText += matcher.push(text)
            if (matcher.stopped) abort.abort()
            else flush(false)
          },
        )
        if (matcher.stopped) finish('stop_sequence', null)
        else finish(outcome.stopReason === 'stopped' ? 'user' : outcome.stopReason, null)
      } catch (e) {
        if (s.info.state === 'crashed') finish('crashed', s.info.crash)
        else finish('error', asApiError(e).message)
      } finally {
        if (s.running?.requestId === requestId) s.running = null
        if (s.info.state === 'generating') s.info = { ...s.info, state: 'ready' }
      }
    })()
    s.running = { requestId, abort, done }
    return { requestId, promptTokens, droppedTurns: fitted.droppedTurns, droppedTokens: fitted.droppedTokens, seed, contextSize }
  }

  private async stopRunning(s: Session): Promise<boolean> {
    const r = s.running
    if (!r) return false
    r.abort.abort()
    await r.done
    return true
  }

  async stop(sessionId: string): Promise<{ stopped: boolean }> {
    return { stopped: await this.stopRunning(this.session(sessionId)) }
  }

  async unload(sessionId: string): Promise<{ unloaded: boolean }> {
    const s = this.sessions.get(sessionId)
    if (!s) return { unloaded: false }
    this.sessions.delete(sessionId)
    await this.stopRunning(s).catch(() => undefined)
    const backend = s.backend
    s.backend = null
    await backend?.dispose().catch(() => undefined)
    s.info = { ...s.info, state: 'unloaded' }
    this.opts.emitSession(s.info)
    return { unloaded: true }
  }

  // Loads the model of a session again (after its GGUF process died), keeping the session id.
  async restart(sessionId: string): Promise<ChatSessionInfo> {
    const s = this.session(sessionId)
    await this.stopRunning(s).catch(() => undefined)
    const old = s.backend
    s.backend = null
    await old?.dispose().catch(() => undefined)
    const backend = await this.openBackend(s.loadArgs)
    this.attach(sessionId, s, backend)
    this.opts.emitSession(s.info)
    return s.info
  }

  list(): ChatSessionInfo[] {
    return [...this.sessions.values()].map((s) => s.info)
  }

  async countTokens(sessionId: string, text: string): Promise<{ tokens: number }> {
    const backend = this.liveBackend(this.session(sessionId))
    return { tokens: text === '' ? 0 : (await backend.tokenize(text)).length }
  }

  async readDocument(file: string): Promise<ChatDocument> {
    const abs = path.resolve(file)
    const st = await stat(abs).catch(() => null)
    if (!st) throw new ApiError('not_found', `${abs}: no such file`)
    if (!st.isFile()) throw new ApiError('bad_input', `${abs} is not a file; pick a text file`)
    if (st.size > MAX_DOCUMENT_BYTES)
      throw new ApiError(
        'bad_input',
        `${abs} is ${(st.size / 1024).toFixed(0)} KiB; documents up to 512 KiB (about 130k tokens, more than the context of these models) can be loaded`,
      )
    const bytes = await readFile(abs)
    if (bytes.subarray(0, 8192).includes(0)) throw new ApiError('bad_input', `${abs} looks like a binary file; pick a text file`)
    return { path: abs, name: path.basename(abs), text: new TextDecoder('utf-8').decode(bytes), bytes: st.size }
  }

  // For tests: the backend object of a session (to kill its process, read logits).
  backendOf(sessionId: string): ChatBackend | null {
    return this.sessions.get(sessionId)?.backend ?? null
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.sessions.keys()].map((id) => this.unload(id)))
  }
}
