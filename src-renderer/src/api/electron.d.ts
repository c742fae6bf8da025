// The surface the Electron preload exposes through contextBridge as `window.longctx`: one named
// async function per API method, plus an event subscription. No raw ipcRenderer ever crosses.
//
// Each method resolves to the main process's reply envelope (src-main/transports/electron-ipc.ts,
// IpcReply): { ok: true, value } or { ok: false, error: ApiErrorBody }. Errors travel as data
// because an Error thrown across IPC and contextBridge keeps nothing but its message.
import type { ApiErrorBody, ApiEvents, ArgsOf, EventName, MethodName, ResultOf } from '@contract'

export type BridgeReply<T> = { ok: true; value: T } | { ok: false; error: ApiErrorBody }

export type LongCtxBridgeMethods = {
  readonly [M in MethodName]: (args: ArgsOf<M>) => Promise<BridgeReply<ResultOf<M>>>
}

export interface LongCtxBridge extends LongCtxBridgeMethods {
  on<E extends EventName>(event: E, listener: (payload: ApiEvents[E]) => void): () => void
}

declare global {
  interface Window {
    longctx?: LongCtxBridge
  }
}
