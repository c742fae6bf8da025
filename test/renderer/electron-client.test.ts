import { describe, expect, it } from 'vitest'
import { ApiError, type ApiEvents, type EventName } from '@contract'
import { createElectronClient, unwrapReply } from '@/api/electron'
import type { LongCtxBridge } from '@/api/electron.d'
import { toApiError } from '@/api/errors'
import { appInfo, settings } from './fake-api'

// Shaped like src-main/preload: each method returns what ipcRenderer.invoke gives back, the
// main process's { ok, value } / { ok: false, error } envelope.
function bridge(overrides: Record<string, (args: unknown) => Promise<unknown>> = {}) {
  const listeners = new Map<string, Set<(p: unknown) => void>>()
  const b = {
    'app.info': async () => ({ ok: true, value: appInfo }),
    'settings.update': async (args: unknown) => ({ ok: true, value: { ...settings, ...(args as object) } }),
    'models.inspect': async () => ({ ok: false, error: { code: 'not_found', message: 'No folder at /nope.', details: 'ENOENT' } }),
    ...overrides,
    on(event: string, l: (p: unknown) => void) {
      let set = listeners.get(event)
      if (!set) listeners.set(event, (set = new Set()))
      set.add(l)
      return () => set.delete(l)
    },
  }
  const emit = <E extends EventName>(event: E, payload: ApiEvents[E]) => listeners.get(event)?.forEach((l) => l(payload))
  return { bridge: b as unknown as LongCtxBridge, emit, listeners }
}

describe('electron client', () => {
  it('unwraps successful replies', async () => {
    const api = createElectronClient(bridge().bridge)
    expect(api.mode).toBe('electron')
    expect(api.connection.state).toBe('open')
    expect(await api.call('app.info', {})).toEqual(appInfo)
    expect((await api.call('settings.update', { backend: 'cpu' })).backend).toBe('cpu')
  })

  it('turns an error reply into an ApiError', async () => {
    const api = createElectronClient(bridge().bridge)
    const err = await api.call('models.inspect', { path: '/nope' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err).toMatchObject({ code: 'not_found', message: 'No folder at /nope.', details: 'ENOENT' })
  })

  it('strips the IPC wrapper from a thrown error', async () => {
    const api = createElectronClient(
      bridge({
        'app.info': async () => {
          throw new Error("Error invoking remote method 'api:app.info': Error: No handler registered for 'api:app.info'")
        },
      }).bridge,
    )
    await expect(api.call('app.info', {})).rejects.toMatchObject({
      code: 'internal',
      message: "No handler registered for 'api:app.info'",
    })
  })

  it('says so when the preload lacks a method', async () => {
    const b = bridge().bridge as unknown as Record<string, unknown>
    delete b['fs.places']
    const api = createElectronClient(b as unknown as LongCtxBridge)
    await expect(api.call('fs.places', {})).rejects.toMatchObject({ code: 'unknown_method' })
  })

  it('delegates events to the bridge and unsubscribes through it', () => {
    const { bridge: b, emit, listeners } = bridge()
    const api = createElectronClient(b)
    const seen: unknown[] = []
    const off = api.on('settings.changed', (s) => seen.push(s))
    emit('settings.changed', settings)
    off()
    emit('settings.changed', settings)
    expect(seen).toEqual([settings])
    expect(listeners.get('settings.changed')?.size).toBe(0)
  })
})

describe('reply and error normalisation', () => {
  it('accepts bare results from a preload that already unwraps', () => {
    expect(unwrapReply(appInfo)).toEqual(appInfo)
    expect(unwrapReply({ ok: true, value: null })).toBeNull()
    expect(() => unwrapReply({ ok: false, error: 'weird' })).toThrow(ApiError)
  })

  it('maps bodies, serialised bodies, errors and strings', () => {
    expect(toApiError({ code: 'busy', message: 'training' })).toMatchObject({ code: 'busy', message: 'training' })
    expect(toApiError(new Error('{"code":"engine","message":"CUDA OOM","details":"12 GiB"}'))).toMatchObject({
      code: 'engine',
      details: '12 GiB',
    })
    expect(toApiError({ code: 'not-a-code', message: 'x' })).toMatchObject({ code: 'internal' })
    expect(toApiError('plain')).toMatchObject({ code: 'internal', message: 'plain' })
    const same = new ApiError('permission', 'no')
    expect(toApiError(same)).toBe(same)
  })
})
