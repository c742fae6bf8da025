// The renderer's single entry to the backend. Stores import `api` from here and never know which
// transport carries their calls.
//
// Note for the contract owner: importing ApiError from '@contract' bundles zod into the renderer;
// a zod-free module for the shared types and ApiError would keep the renderer lean.
import type { ApiClient, ApiEvents, ArgsOf, EventName, MethodName, ResultOf } from '@contract'
import { createElectronClient } from './electron'
import type { ConnectionInfo, RendererApiClient } from './types'
import { createWebClient } from './web'

export type { ConnectionInfo, ConnectionState, RendererApiClient } from './types'
export { toApiError } from './errors'
export { ApiError } from '@contract/errors'

/** Electron when the preload exposed its bridge, web mode otherwise. */
export function createApiClient(): RendererApiClient {
  const bridge = typeof window !== 'undefined' ? window.longctx : undefined
  return bridge ? createElectronClient(bridge) : createWebClient()
}

const STATIC_CONNECTION: ConnectionInfo = Object.freeze({ state: 'open', attempts: 0, nextAttemptAtMs: null })

/** Adapt a bare contract client (a test double, say) to the renderer's interface. */
function withConnection(client: ApiClient | RendererApiClient): RendererApiClient {
  if ('onConnectionChange' in client) return client
  return {
    mode: client.mode,
    call: (name, args) => client.call(name, args),
    on: (event, listener) => client.on(event, listener),
    connection: STATIC_CONNECTION,
    onConnectionChange: () => () => {},
    close: () => {},
  }
}

let current: RendererApiClient | null = null

function client(): RendererApiClient {
  // created on first use, not at import, so importing a store never opens a connection
  return (current ??= createApiClient())
}

/**
 * Replace the transport (tests, or an embedding that brings its own). Returns the previous one.
 * Stores keep calling `api`; it forwards to whatever is installed at call time.
 */
export function installApiClient(next: ApiClient | RendererApiClient | null): RendererApiClient | null {
  const prev = current
  current = next ? withConnection(next) : null
  return prev
}

export const api: RendererApiClient = {
  call<M extends MethodName>(name: M, args: ArgsOf<M>): Promise<ResultOf<M>> {
    return client().call(name, args)
  },
  on<E extends EventName>(event: E, listener: (payload: ApiEvents[E]) => void) {
    return client().on(event, listener)
  },
  get mode() {
    return client().mode
  },
  get connection() {
    return client().connection
  },
  onConnectionChange(listener) {
    return client().onConnectionChange(listener)
  },
  close() {
    current?.close()
  },
}
