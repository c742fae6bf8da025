// Web transport: one POST per call to /api/<method>, server-pushed events over a WebSocket at
// /events. Both are same-origin, so the HttpOnly auth cookie the server set on first page load
// rides along; the renderer never sees or stores the token.
import type { ApiEvents, EventName, MethodName } from '@contract'
import { ApiError } from '@contract/errors'
import { isApiErrorBody, toApiError } from './errors'
import type { ConnectionInfo, RendererApiClient } from './types'

/** The part of the WebSocket interface we use; lets tests pass the `ws` package's client. */
export interface SocketLike {
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: unknown) => void) | null
  onerror: ((ev: unknown) => void) | null
  close(code?: number, reason?: string): void
}

export interface WebClientOptions {
  /** origin of the server; '' means the page's own origin (relative URLs) */
  baseUrl?: string
  /** full ws:// URL of the event channel; derived from baseUrl or the page location if absent */
  eventsUrl?: string
  fetch?: typeof fetch
  openSocket?: (url: string) => SocketLike
  /** reconnect delay: initialMs * 2^attempt, capped at maxMs, with up to 20% jitter */
  backoff?: { initialMs: number; maxMs: number }
}

const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 15_000 }

export function reconnectDelayMs(attempt: number, backoff = DEFAULT_BACKOFF, random = Math.random): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.max(0, attempt))
  // jitter spreads reconnects of several open tabs after a server restart
  return Math.round(base * (1 + 0.2 * random()))
}

function defaultEventsUrl(baseUrl: string): string {
  const origin = baseUrl || globalThis.location?.origin || ''
  const url = new URL('/events', origin)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  return url.toString()
}

function statusCode(status: number): ApiError['code'] {
  if (status === 401 || status === 403) return 'unauthorized'
  if (status === 404) return 'unknown_method'
  if (status === 400 || status === 422) return 'invalid_argument'
  if (status === 409) return 'busy'
  return 'internal'
}

function statusMessage(status: number): string {
  if (status === 401 || status === 403) {
    return 'This page is not authorised by the LongCtx server. Open the URL the server printed (it carries the access token).'
  }
  return `The server answered HTTP ${status}.`
}

type Listener = (payload: unknown) => void

export function createWebClient(options: WebClientOptions = {}): RendererApiClient {
  const baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '')
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  const openSocket =
    options.openSocket ?? ((url: string) => new WebSocket(url) as unknown as SocketLike)
  const backoff = options.backoff ?? DEFAULT_BACKOFF

  const listeners = new Map<string, Set<Listener>>()
  const connectionListeners = new Set<(info: ConnectionInfo) => void>()
  let connection: ConnectionInfo = { state: 'connecting', attempts: 0, nextAttemptAtMs: null }
  let socket: SocketLike | null = null
  let retryTimer: ReturnType<typeof setTimeout> | null = null
  let started = false
  let closedByUs = false

  function setConnection(next: ConnectionInfo) {
    connection = next
    for (const l of [...connectionListeners]) {
      try {
        l(next)
      } catch (e) {
        console.error('connection listener failed', e)
      }
    }
  }

  function dispatch(raw: unknown) {
    let text: string
    if (typeof raw === 'string') text = raw
    else if (raw instanceof ArrayBuffer || ArrayBuffer.isView(raw)) text = new TextDecoder().decode(raw as ArrayBuffer)
    else return
    let msg: unknown
    try {
      msg = JSON.parse(text)
    } catch {
      return // a malformed frame must not take the channel down
    }
    if (typeof msg !== 'object' || msg === null) return
    const { event, payload } = msg as { event?: unknown; payload?: unknown }
    if (typeof event !== 'string') return
    for (const l of [...(listeners.get(event) ?? [])]) {
      // one broken listener must not starve the others
      try {
        l(payload)
      } catch (e) {
        console.error(`listener for "${event}" failed`, e)
      }
    }
  }

  function connect() {
    retryTimer = null
    if (closedByUs) return
    let s: SocketLike
    try {
      s = openSocket(options.eventsUrl ?? defaultEventsUrl(baseUrl))
    } catch (e) {
      console.error('cannot open the event channel', e)
      scheduleReconnect()
      return
    }
    socket = s
    s.onopen = () => {
      if (socket !== s) return
      setConnection({ state: 'open', attempts: 0, nextAttemptAtMs: null })
    }
    s.onmessage = (ev) => {
      if (socket === s) dispatch(ev.data)
    }
    s.onerror = () => {
      // a close event always follows; reconnecting is handled there
    }
    s.onclose = () => {
      if (socket !== s) return
      socket = null
      if (!closedByUs) scheduleReconnect()
    }
  }

  function scheduleReconnect() {
    const attempts = connection.attempts + 1
    const delay = reconnectDelayMs(attempts - 1, backoff)
    setConnection({ state: 'reconnecting', attempts, nextAttemptAtMs: Date.now() + delay })
    retryTimer = setTimeout(connect, delay)
  }

  function ensureStarted() {
    if (started || closedByUs) return
    started = true
    connect()
  }

  return {
    mode: 'web',

    async call(name: MethodName, args: unknown) {
      let res: Response
      try {
        res = await doFetch(`${baseUrl}/api/${name}`, {
          method: 'POST',
          body: JSON.stringify(args ?? {}),
          headers: { 'content-type': 'application/json' },
          credentials: 'same-origin',
        })
      } catch (e) {
        throw new ApiError(
          'internal',
          'Cannot reach the LongCtx server. Is it still running?',
          e instanceof Error ? e.message : String(e),
        )
      }
      const text = await res.text().catch(() => '')
      let body: unknown = undefined
      let parsed = false
      if (text) {
        try {
          body = JSON.parse(text)
          parsed = true
        } catch {
          // handled below: a proxy or a crashed server may answer with HTML or plain text
        }
      }
      if (res.ok) {
        if (text && !parsed) {
          throw new ApiError('internal', `The server sent an unreadable answer to ${name}.`, text.slice(0, 300))
        }
        return body as never
      }
      if (isApiErrorBody(body)) throw ApiError.fromBody(body)
      throw new ApiError(statusCode(res.status), statusMessage(res.status), text ? text.slice(0, 300) : undefined)
    },

    on<E extends EventName>(event: E, listener: (payload: ApiEvents[E]) => void) {
      let set = listeners.get(event)
      if (!set) listeners.set(event, (set = new Set()))
      const l = listener as Listener
      set.add(l)
      // The channel opens with the first listener and then stays open: views subscribe and
      // unsubscribe as the user navigates, and reconnecting on every route change would flap.
      ensureStarted()
      return () => {
        set.delete(l)
      }
    },

    get connection() {
      return connection
    },

    onConnectionChange(listener) {
      connectionListeners.add(listener)
      return () => {
        connectionListeners.delete(listener)
      }
    },

    close() {
      closedByUs = true
      if (retryTimer) clearTimeout(retryTimer)
      retryTimer = null
      const s = socket
      socket = null
      s?.close()
      setConnection({ state: 'closed', attempts: connection.attempts, nextAttemptAtMs: null })
    },
  } as RendererApiClient
}

export { toApiError }
