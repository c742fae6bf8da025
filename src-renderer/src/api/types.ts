import type { ApiClient } from '@contract'

/**
 * State of the event channel. Electron IPC is always 'open'. Web mode starts 'connecting'; after
 * a drop (or a failed first attempt) it is 'reconnecting' until the socket opens again.
 */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed'

export interface ConnectionInfo {
  state: ConnectionState
  /** consecutive failed attempts since the last open socket */
  attempts: number
  /** when the next attempt is due (epoch ms), while reconnecting */
  nextAttemptAtMs: number | null
}

/** The contract's client plus what the UI needs to show the health of the event channel. */
export interface RendererApiClient extends ApiClient {
  readonly connection: ConnectionInfo
  onConnectionChange(listener: (info: ConnectionInfo) => void): () => void
  /** stop reconnecting and close the event channel (tests, teardown) */
  close(): void
}
