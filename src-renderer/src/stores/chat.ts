// The chat view's state: one or two sides (compare mode), each a loaded model with its own
// transcript; the shared composer settings (sampling, context policy, chat or completion, the
// loaded document); and the streamed answers, routed by request id from 'chat.token' events.
// The core keeps no conversation: every send carries the side's whole history.
import { defineStore } from 'pinia'
import { computed, onScopeDispose, reactive, ref } from 'vue'
import type {
  ApiError,
  ChatDocument,
  ChatMessage,
  ChatSampling,
  ChatSessionInfo,
  ChatSource,
  ChatStopReason,
  ChatTokenEvent,
  ContextPolicy,
} from '@contract'
import { api } from '@/api'
import { useErrorStore } from './errors'

export type Side = 'a' | 'b'
export type ChatFormat = 'chat' | 'completion'

export interface UiMessage {
  id: number
  role: 'user' | 'assistant'
  content: string
  streaming: boolean
  requestId: string | null
  tokens: number
  tokensPerSec: number | null
  timeToFirstTokenMs: number | null
  stopReason: ChatStopReason | null
  error: string | null
  seed: number | null
}

export interface SideState {
  side: Side
  session: ChatSessionInfo | null
  loading: boolean
  error: ApiError | null
  messages: UiMessage[]
  contextUsed: number
  droppedTurns: number
  droppedTokens: number
  lastStopReason: ChatStopReason | null
}

export interface ChatDocumentState extends ChatDocument {
  tokens: number | null // in the tokenizer of side A's model, when one is loaded
}

export const DEFAULT_SAMPLING: ChatSampling = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  repetitionPenalty: 1.1,
  maxTokens: 256,
  seed: null,
}

function emptySide(side: Side): SideState {
  return { side, session: null, loading: false, error: null, messages: [], contextUsed: 0, droppedTurns: 0, droppedTokens: 0, lastStopReason: null }
}

export const POLICY_LABELS: Record<ContextPolicy, string> = {
  'truncate-oldest': 'Drop oldest',
  refuse: 'Refuse',
}

export const useChatStore = defineStore('chat', () => {
  const errors = useErrorStore()
  const sides = reactive<Record<Side, SideState>>({ a: emptySide('a'), b: emptySide('b') })
  const compare = ref(false)
  const sampling = ref<ChatSampling>({ ...DEFAULT_SAMPLING })
  const policy = ref<ContextPolicy>('truncate-oldest')
  const format = ref<ChatFormat>('chat')
  const systemPrompt = ref('')
  const document = ref<ChatDocumentState | null>(null)
  const documentLoading = ref(false)
  const draft = ref('')
  const sendError = ref<ApiError | null>(null)
  let nextId = 1

  const activeSides = computed<SideState[]>(() => (compare.value ? [sides.a, sides.b] : [sides.a]))
  const ready = computed(() => activeSides.value.every((s) => s.session !== null && s.session.state !== 'crashed'))
  const generating = computed(() => activeSides.value.some((s) => s.messages.some((m) => m.streaming)))
  const canRegenerate = computed(
    () => !generating.value && ready.value && activeSides.value.every((s) => s.messages.some((m) => m.role === 'user')),
  )

  // ---- sessions ---------------------------------------------------------------------------

  async function load(side: Side, source: ChatSource, contextSize?: number): Promise<boolean> {
    const s = sides[side]
    s.loading = true
    s.error = null
    try {
      if (s.session) await unloadQuietly(s)
      const info = await api.call('chat.load', { source, ...(contextSize ? { contextSize } : {}) })
      s.session = info
      // a new model starts a new conversation: the old answers were another model's
      s.messages = []
      s.contextUsed = 0
      s.droppedTurns = 0
      s.droppedTokens = 0
      s.lastStopReason = null
      if (side === 'a' && document.value) void countDocument()
      return true
    } catch (e) {
      s.error = errors.report(e, { source: 'chat.load', inline: true })
      return false
    } finally {
      s.loading = false
    }
  }

  async function unloadQuietly(s: SideState) {
    const id = s.session?.sessionId
    s.session = null
    if (id) await api.call('chat.unload', { sessionId: id }).catch(() => undefined)
  }

  async function unload(side: Side): Promise<void> {
    const s = sides[side]
    for (const m of s.messages) if (m.streaming) m.streaming = false
    await unloadQuietly(s)
    s.contextUsed = 0
  }

  async function restart(side: Side): Promise<void> {
    const s = sides[side]
    if (!s.session) return
    s.loading = true
    s.error = null
    try {
      s.session = await api.call('chat.restart', { sessionId: s.session.sessionId })
    } catch (e) {
      s.error = errors.report(e, { source: 'chat.restart', inline: true })
    } finally {
      s.loading = false
    }
  }

  // A reloaded window finds the sessions the core still holds (the models stay loaded).
  async function reattach(): Promise<void> {
    try {
      const list = await api.call('chat.sessions', {})
      const known = new Set([sides.a.session?.sessionId, sides.b.session?.sessionId])
      const orphans = list.filter((l) => !known.has(l.sessionId))
      if (!sides.a.session && orphans[0]) sides.a.session = orphans.shift() ?? null
      if (!sides.b.session && orphans[0]) {
        sides.b.session = orphans.shift() ?? null
        compare.value = true
      }
    } catch (e) {
      errors.report(e, { source: 'chat.sessions' })
    }
  }

  // ---- the document ---------------------------------------------------------------------------

  async function loadDocument(path: string): Promise<void> {
    documentLoading.value = true
    try {
      const doc = await api.call('chat.readDocument', { path })
      document.value = { ...doc, tokens: null }
      await countDocument()
    } catch (e) {
      errors.report(e, { source: 'chat.readDocument' })
    } finally {
      documentLoading.value = false
    }
  }

  async function countDocument(): Promise<void> {
    const doc = document.value
    const id = sides.a.session?.sessionId
    if (!doc || !id) return
    try {
      const { tokens } = await api.call('chat.countTokens', { sessionId: id, text: doc.text })
      if (document.value === doc) doc.tokens = tokens
    } catch {
      // the count is a hint; the send will say if the document does not fit
    }
  }

  function removeDocument() {
    document.value = null
  }

  // The system part of the transcript: the instructions, then the document.
  function systemText(): string {
    const parts: string[] = []
    if (systemPrompt.value.trim()) parts.push(systemPrompt.value.trim())
    if (document.value) parts.push(`Document (${document.value.name}):\n${document.value.text.trim()}`)
    return parts.join('\n\n')
  }

  // ---- sending ----------------------------------------------------------------------------------

  function history(s: SideState): ChatMessage[] {
    const system = systemText()
    const turns = s.messages
      .filter((m) => !(m.role === 'assistant' && m.content.trim() === '' && m.error))
      .map((m) => ({ role: m.role, content: m.content }))
    return system ? [{ role: 'system', content: system }, ...turns] : turns
  }

  async function sendOn(s: SideState, text: string, seed: number | null): Promise<void> {
    const session = s.session
    if (!session) return
    const reply: UiMessage = {
      id: nextId++,
      role: 'assistant',
      content: '',
      streaming: true,
      requestId: null,
      tokens: 0,
      tokensPerSec: null,
      timeToFirstTokenMs: null,
      stopReason: null,
      error: null,
      seed: null,
    }
    const args =
      format.value === 'chat'
        ? { sessionId: session.sessionId, format: 'chat' as const, messages: history(s), sampling: { ...sampling.value, seed }, policy: policy.value }
        : {
            sessionId: session.sessionId,
            format: 'completion' as const,
            prompt: (document.value ? `${document.value.text}\n\n` : '') + text,
            sampling: { ...sampling.value, seed },
            policy: policy.value,
          }
    s.messages.push(reply)
    const live = s.messages[s.messages.length - 1]! // the reactive proxy, for the updates below
    try {
      const r = await api.call('chat.send', args)
      live.requestId = r.requestId
      live.seed = r.seed
      s.droppedTurns = r.droppedTurns
      s.droppedTokens = r.droppedTokens
      s.contextUsed = r.promptTokens
      // events that arrived before the reply (a very fast model) wait in `early`; in compare mode
      // the other side's stay there until its own reply comes
      for (const e of takeEarly(r.requestId)) apply(live, s, e)
    } catch (e) {
      const err = errors.report(e, { source: 'chat.send', inline: true })
      live.streaming = false
      live.error = err.message
      live.stopReason = 'error'
      s.lastStopReason = 'error'
      sendError.value = err
    }
  }

  async function send(): Promise<void> {
    const text = draft.value.trim()
    if (!text || !ready.value || generating.value) return
    sendError.value = null
    draft.value = ''
    // A fixed seed goes to both sides; without one each side draws its own, which also lets the
    // core reuse the conversation's KV cache between turns (a fixed seed restarts it to repeat).
    const shared = sampling.value.seed
    await Promise.all(
      activeSides.value.map((s) => {
        s.messages.push({
          id: nextId++,
          role: 'user',
          content: text,
          streaming: false,
          requestId: null,
          tokens: 0,
          tokensPerSec: null,
          timeToFirstTokenMs: null,
          stopReason: null,
          error: null,
          seed: null,
        })
        return sendOn(s, text, shared)
      }),
    )
  }

  // The last question again, with a new seed unless the seed is fixed.
  async function regenerate(): Promise<void> {
    if (!canRegenerate.value) return
    sendError.value = null
    const shared = sampling.value.seed
    await Promise.all(
      activeSides.value.map((s) => {
        while (s.messages.length && s.messages[s.messages.length - 1]!.role === 'assistant') s.messages.pop()
        const lastUser = s.messages[s.messages.length - 1]
        return lastUser ? sendOn(s, lastUser.content, shared) : Promise.resolve()
      }),
    )
  }

  async function stop(): Promise<void> {
    await Promise.all(
      activeSides.value
        .filter((s) => s.session && s.messages.some((m) => m.streaming))
        .map((s) => api.call('chat.stop', { sessionId: s.session!.sessionId }).catch((e) => errors.report(e, { source: 'chat.stop' }))),
    )
  }

  function clear() {
    for (const s of activeSides.value) {
      s.messages = []
      s.contextUsed = 0
      s.droppedTurns = 0
      s.droppedTokens = 0
      s.lastStopReason = null
    }
  }

  function setCompare(on: boolean) {
    compare.value = on
  }

  // ---- streamed answers ---------------------------------------------------------------------------

  const early: ChatTokenEvent[] = []

  function takeEarly(requestId: string): ChatTokenEvent[] {
    const mine = early.filter((e) => e.requestId === requestId)
    const others = early.filter((e) => e.requestId !== requestId)
    early.splice(0, early.length, ...others)
    return mine
  }

  function apply(m: UiMessage, s: SideState, e: ChatTokenEvent) {
    // A base model's answer starts with the space after "Assistant:".
    m.content = m.content === '' ? e.text.replace(/^\s+/, '') : m.content + e.text
    m.tokens = e.tokens
    m.tokensPerSec = e.tokensPerSec
    m.timeToFirstTokenMs = e.timeToFirstTokenMs
    s.contextUsed = e.contextUsed
    if (e.done) {
      m.streaming = false
      m.stopReason = e.stopReason
      m.error = e.error
      s.lastStopReason = e.stopReason
    }
  }

  function onToken(e: ChatTokenEvent) {
    for (const s of [sides.a, sides.b]) {
      const m = s.messages.find((x) => x.requestId === e.requestId)
      if (m) return apply(m, s, e)
    }
    // chat.send has not answered yet: keep it for a moment
    early.push(e)
    if (early.length > 200) early.splice(0, early.length - 200)
  }

  function onSession(info: ChatSessionInfo) {
    for (const s of [sides.a, sides.b])
      if (s.session?.sessionId === info.sessionId) {
        if (info.state === 'unloaded') s.session = null
        else s.session = info
        if (info.state === 'crashed') for (const m of s.messages) if (m.streaming) m.streaming = false
      }
  }

  const offToken = api.on('chat.token', onToken)
  const offSession = api.on('chat.session', onSession)
  onScopeDispose(() => {
    offToken()
    offSession()
  })

  return {
    sides,
    compare,
    sampling,
    policy,
    format,
    systemPrompt,
    document,
    documentLoading,
    draft,
    sendError,
    activeSides,
    ready,
    generating,
    canRegenerate,
    load,
    unload,
    restart,
    reattach,
    loadDocument,
    removeDocument,
    send,
    regenerate,
    stop,
    clear,
    setCompare,
    resetSampling: () => (sampling.value = { ...DEFAULT_SAMPLING }),
  }
})
