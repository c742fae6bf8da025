// The only bridge between the sandboxed renderer and the main process: one named async function
// per API method and an event subscription. No ipcRenderer, no Node API leaks through.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron'
import { EVENT_NAMES, IPC_CALL_PREFIX, IPC_EVENT_CHANNEL, METHOD_NAMES } from '../api/names.ts'

type Listener = (payload: unknown) => void

const bridge: Record<string, unknown> = {}
for (const name of METHOD_NAMES) {
  bridge[name] = (args: unknown) => ipcRenderer.invoke(IPC_CALL_PREFIX + name, args)
}

const listeners = new Map<string, Set<Listener>>()
ipcRenderer.on(IPC_EVENT_CHANNEL, (_e: IpcRendererEvent, event: string, payload: unknown) => {
  for (const l of listeners.get(event) ?? []) l(payload)
})

bridge.on = (event: string, listener: Listener) => {
  if (!(EVENT_NAMES as readonly string[]).includes(event) || typeof listener !== 'function') {
    throw new Error(`unknown event ${String(event)}`)
  }
  let set = listeners.get(event)
  if (!set) listeners.set(event, (set = new Set()))
  set.add(listener)
  return () => set.delete(listener)
}

contextBridge.exposeInMainWorld('longctx', Object.freeze(bridge))
