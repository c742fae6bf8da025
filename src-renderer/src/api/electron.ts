// Electron transport: calls go straight to the named preload functions, whose replies are
// { ok, value } / { ok: false, error } envelopes (see electron.d.ts).
import type { ApiEvents, EventName, MethodName } from '@contract'
import { ApiError } from '@contract/errors'
import type { LongCtxBridge } from './electron.d'
import { isApiErrorBody, toApiError } from './errors'
import type { ConnectionInfo, RendererApiClient } from './types'

const ALWAYS_OPEN: ConnectionInfo = Object.freeze({ state: 'open', attempts: 0, nextAttemptAtMs: null })

type Envelope = { ok: true; value: unknown } | { ok: false; error: unknown }

function isEnvelope(x: unknown): x is Envelope {
  if (typeof x !== 'object' || x === null || typeof (x as { ok?: unknown }).ok !== 'boolean') return false
  return (x as Envelope).ok ? 'value' in x : 'error' in x
}

/** The value of a successful reply; throws the ApiError of a failed one. */
export function unwrapReply(reply: unknown): unknown {
  // A preload that already unwraps (returns the bare result) is accepted too: no API result has
  // an `ok` field, so the two cannot be confused.
  if (!isEnvelope(reply)) return reply
  if (reply.ok) return reply.value
  throw isApiErrorBody(reply.error) ? ApiError.fromBody(reply.error) : toApiError(reply.error)
}

export function createElectronClient(bridge: LongCtxBridge): RendererApiClient {
  return {
    mode: 'electron',
    async call(name, args) {
      const fn = (bridge as unknown as Record<MethodName, ((a: unknown) => Promise<unknown>) | undefined>)[name]
      if (typeof fn !== 'function') {
        // a renderer newer than its preload: say so instead of "x is not a function"
        throw new ApiError('unknown_method', `The app's backend does not know "${name}". Restart the app after updating.`)
      }
      let reply: unknown
      try {
        reply = await fn(args)
      } catch (e) {
        throw toApiError(e) // IPC itself failed (main process gone, handler missing)
      }
      return unwrapReply(reply) as never
    },
    on<E extends EventName>(event: E, listener: (payload: ApiEvents[E]) => void) {
      return bridge.on(event, listener)
    },
    connection: ALWAYS_OPEN,
    onConnectionChange() {
      return () => {}
    },
    close() {},
  }
}
