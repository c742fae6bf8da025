// Electron transport: one ipcMain handler per API method (the preload exposes the same names),
// events pushed to every window. Only our own renderer may call: the sender frame's URL is
// checked against the app's page, so a navigated-away or injected frame gets nothing.
import type { IpcMain, IpcMainInvokeEvent, WebContents } from 'electron'
import { ApiError } from '../api/contract.ts'
import { IPC_CALL_PREFIX, IPC_EVENT_CHANNEL, METHOD_NAMES } from '../api/names.ts'
import { toApiError, type Core } from '../core/core.ts'

export interface IpcOptions {
  core: Core
  ipcMain: IpcMain
  isTrustedUrl: (url: string) => boolean
  windows: () => WebContents[]
}

// What crosses IPC: a plain object the renderer side turns back into an ApiError.
export type IpcReply = { ok: true; value: unknown } | { ok: false; error: ReturnType<ApiError['toBody']> }

export function registerIpc(opts: IpcOptions): () => void {
  for (const name of METHOD_NAMES) {
    opts.ipcMain.handle(IPC_CALL_PREFIX + name, async (event: IpcMainInvokeEvent, args: unknown): Promise<IpcReply> => {
      const url = event.senderFrame?.url ?? ''
      if (!opts.isTrustedUrl(url)) {
        return { ok: false, error: new ApiError('unauthorized', 'Calls are only accepted from the app window.').toBody() }
      }
      try {
        return { ok: true, value: await opts.core.call(name, args) }
      } catch (err) {
        return { ok: false, error: toApiError(err).toBody() }
      }
    })
  }
  const off = opts.core.onAny((event, payload) => {
    for (const wc of opts.windows()) if (!wc.isDestroyed()) wc.send(IPC_EVENT_CHANNEL, event, payload)
  })
  return () => {
    off()
    for (const name of METHOD_NAMES) opts.ipcMain.removeHandler(IPC_CALL_PREFIX + name)
  }
}
