// A tiny typed event hub for server-pushed events. Producers that cost something (GPU polling)
// start on the first listener and stop on the last, through onListenersChanged.
import type { ApiEvents, EventName } from '../api/contract.ts'

type Listener<E extends EventName> = (payload: ApiEvents[E]) => void
type AnyListener = (event: EventName, payload: unknown) => void

export class EventHub {
  private readonly listeners = new Map<EventName, Set<(payload: never) => void>>()
  private readonly wildcard = new Set<AnyListener>()
  onListenersChanged: (() => void) | null = null

  on<E extends EventName>(event: E, listener: Listener<E>): () => void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, (set = new Set()))
    set.add(listener as (payload: never) => void)
    this.onListenersChanged?.()
    return () => {
      set.delete(listener as (payload: never) => void)
      this.onListenersChanged?.()
    }
  }

  // Transports forward every event to their clients.
  onAny(listener: AnyListener): () => void {
    this.wildcard.add(listener)
    this.onListenersChanged?.()
    return () => {
      this.wildcard.delete(listener)
      this.onListenersChanged?.()
    }
  }

  emit<E extends EventName>(event: E, payload: ApiEvents[E]): void {
    for (const l of this.listeners.get(event) ?? []) (l as Listener<E>)(payload)
    for (const l of this.wildcard) l(event, payload)
  }

  hasListeners(event: EventName): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0 || this.wildcard.size > 0
  }
}
