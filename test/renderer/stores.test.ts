import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ApiError } from '@contract'
import { installApiClient } from '@/api'
import { useAppStore } from '@/stores/app'
import { useConnectionStore } from '@/stores/connection'
import { useErrorStore } from '@/stores/errors'
import { useModelStore } from '@/stores/model'
import { useSettingsStore } from '@/stores/settings'
import { useSystemStore } from '@/stores/system'
import { FakeApi, GiB, appInfo, deferred, gpu, modelInfo, settings, systemInfo } from './fake-api'

let fake: FakeApi

beforeEach(() => {
  fake = new FakeApi('web', {
    'app.info': () => appInfo,
    'system.info': () => systemInfo,
    'settings.get': () => settings,
    'settings.update': (patch) => ({ ...settings, ...patch }),
    'models.inspect': ({ path }) => ({ ...modelInfo, path }),
  })
  installApiClient(fake)
  setActivePinia(createPinia())
})

afterEach(() => {
  installApiClient(null)
})

describe('useErrorStore', () => {
  it('normalises anything to an ApiError and toasts it', () => {
    const errors = useErrorStore()
    const err = errors.report(new Error('boom'), { source: 'x.y' })
    expect(err).toBeInstanceOf(ApiError)
    expect(err.code).toBe('internal')
    expect(errors.toasts).toHaveLength(1)
    expect(errors.toasts[0]).toMatchObject({ message: 'boom', source: 'x.y', count: 1 })
  })

  it('keeps inline errors in the log but out of the toasts', () => {
    const errors = useErrorStore()
    errors.report(new ApiError('not_found', 'gone'), { inline: true })
    expect(errors.entries).toHaveLength(1)
    expect(errors.toasts).toHaveLength(0)
  })

  it('folds an identical repeat into a count instead of stacking toasts', () => {
    const errors = useErrorStore()
    errors.report(new ApiError('internal', 'down'), { source: 'system.info' })
    errors.report(new ApiError('internal', 'down', 'second time'), { source: 'system.info' })
    expect(errors.toasts).toHaveLength(1)
    expect(errors.toasts[0]).toMatchObject({ count: 2, details: 'second time' })
    errors.report(new ApiError('internal', 'other'), { source: 'system.info' })
    expect(errors.toasts).toHaveLength(2)
  })

  it('dismisses one or all, and a dismissed error repeating shows again', () => {
    const errors = useErrorStore()
    errors.report(new ApiError('busy', 'a'))
    errors.report(new ApiError('busy', 'b'))
    errors.dismiss(errors.toasts[0].id)
    expect(errors.toasts.map((t) => t.message)).toEqual(['b'])
    errors.dismissAll()
    expect(errors.toasts).toHaveLength(0)
    errors.report(new ApiError('busy', 'b'))
    expect(errors.toasts).toHaveLength(1)
  })
})

describe('useAppStore', () => {
  it('loads app.info and knows the transport before it answers', async () => {
    const app = useAppStore()
    expect(app.mode).toBe('web')
    await app.load()
    expect(app.info).toEqual(appInfo)
  })

  it('sends a failure to the error store', async () => {
    fake.handlers['app.info'] = () => {
      throw new ApiError('internal', 'core not ready', 'stack…')
    }
    const app = useAppStore()
    await app.load()
    expect(app.info).toBeNull()
    expect(app.loading).toBe(false)
    expect(useErrorStore().toasts[0]).toMatchObject({ code: 'internal', message: 'core not ready', details: 'stack…', source: 'app.info' })
  })
})

describe('useSystemStore', () => {
  it('loads system.info and takes live GPU figures from events', async () => {
    const system = useSystemStore()
    await system.load()
    expect(system.gpus[0].usedBytes).toBe(3 * GiB)
    expect(system.backends).toEqual(['cpu', 'cuda'])
    fake.emit('system.gpus', [{ ...gpu, usedBytes: 10 * GiB }])
    expect(system.gpus[0].usedBytes).toBe(10 * GiB)
    expect(system.lastGpuUpdateMs).not.toBeNull()
  })

  it('unsubscribes from events when disposed', () => {
    const system = useSystemStore()
    expect(fake.listenerCount('system.gpus')).toBe(1)
    expect(fake.listenerCount('settings.changed')).toBe(1)
    system.$dispose()
    expect(fake.listenerCount('system.gpus')).toBe(0)
    expect(fake.listenerCount('settings.changed')).toBe(0)
  })

  it('re-reads disk figures when the data folder moves', async () => {
    const system = useSystemStore()
    await system.load()
    fake.emit('settings.changed', settings) // same folder: nothing to do
    expect(fake.callsOf('system.info')).toHaveLength(1)
    fake.handlers['system.info'] = () => ({ ...systemInfo, dataDir: '/mnt/big', dataDirFreeBytes: 5000 * GiB })
    fake.emit('settings.changed', { ...settings, dataDir: '/mnt/big' })
    await new Promise((r) => setTimeout(r, 0))
    expect(fake.callsOf('system.info')).toHaveLength(2)
    expect(system.info?.dataDirFreeBytes).toBe(5000 * GiB)
  })

  it('lets the newest load win when answers arrive out of order', async () => {
    const first = deferred<typeof systemInfo>()
    const second = deferred<typeof systemInfo>()
    const queue = [first, second]
    fake.handlers['system.info'] = () => queue.shift()!.promise
    const system = useSystemStore()
    const a = system.load()
    const b = system.load()
    second.resolve({ ...systemInfo, cpuCores: 2 })
    await b
    first.resolve({ ...systemInfo, cpuCores: 64 })
    await a
    expect(system.info?.cpuCores).toBe(2)
    expect(system.loading).toBe(false)
  })

  it('reports a failed load', async () => {
    fake.handlers['system.info'] = () => {
      throw new ApiError('engine', 'NVML crashed')
    }
    const system = useSystemStore()
    await system.load()
    expect(useErrorStore().toasts[0]).toMatchObject({ code: 'engine', source: 'system.info' })
  })
})

describe('useSettingsStore', () => {
  it('loads settings and resolves the theme', async () => {
    const s = useSettingsStore()
    await s.load()
    expect(s.settings).toEqual(settings)
    expect(s.theme).toBe('system')
    expect(s.resolvedTheme).toBe('light') // no OS preference in node
    await s.setTheme('dark')
    expect(s.resolvedTheme).toBe('dark')
    expect(fake.callsOf('settings.update').at(-1)?.args).toEqual({ theme: 'dark' })
  })

  it('switches theme at once and rolls back if the server refuses', async () => {
    const s = useSettingsStore()
    await s.load()
    const answer = deferred<typeof settings>()
    fake.handlers['settings.update'] = () => answer.promise
    const pending = s.setTheme('dark')
    expect(s.settings?.theme).toBe('dark') // optimistic
    answer.reject(new ApiError('permission', 'settings file is read-only'))
    expect(await pending).toBe(false)
    expect(s.settings?.theme).toBe('system')
    expect(useErrorStore().toasts[0]).toMatchObject({ code: 'permission', source: 'settings.update' })
  })

  it('shows a refused data folder inline, not as a toast, and clears it on the next try', async () => {
    const s = useSettingsStore()
    await s.load()
    fake.handlers['settings.update'] = (patch) => {
      if (patch.dataDir === '/root/forbidden') throw new ApiError('permission', 'The app cannot write to /root/forbidden.', 'EACCES')
      return { ...settings, ...patch }
    }
    expect(await s.setDataDir('/root/forbidden')).toBe(false)
    expect(s.dataDirError).toMatchObject({ code: 'permission', message: 'The app cannot write to /root/forbidden.', details: 'EACCES' })
    expect(s.settings?.dataDir).toBe(settings.dataDir) // unchanged
    const errors = useErrorStore()
    expect(errors.toasts).toHaveLength(0)
    expect(errors.entries[0]).toMatchObject({ inline: true, source: 'settings.update' })

    expect(await s.setDataDir('/mnt/big')).toBe(true)
    expect(s.dataDirError).toBeNull()
    expect(s.settings?.dataDir).toBe('/mnt/big')
  })

  it('follows settings.changed from other windows and stops when disposed', async () => {
    const s = useSettingsStore()
    await s.load()
    fake.emit('settings.changed', { ...settings, backend: 'cpu' })
    expect(s.settings?.backend).toBe('cpu')
    s.$dispose()
    expect(fake.listenerCount('settings.changed')).toBe(0)
  })
})

describe('useModelStore', () => {
  it('inspects a folder', async () => {
    const m = useModelStore()
    const info = await m.inspect('/models/gpt2')
    expect(info?.parameters).toBe(124_439_808)
    expect(m.info?.path).toBe('/models/gpt2')
    expect(m.ready).toBe(true)
    expect(fake.callsOf('models.inspect')[0].args).toEqual({ path: '/models/gpt2' })
  })

  it('keeps the error for the step to show, logged inline', async () => {
    fake.handlers['models.inspect'] = () => {
      throw new ApiError('bad_input', 'model.safetensors is truncated: expected 548 MB, found 12 MB', 'tensor h.11.mlp.c_proj.weight')
    }
    const m = useModelStore()
    expect(await m.inspect('/models/broken')).toBeNull()
    expect(m.info).toBeNull()
    expect(m.ready).toBe(false)
    expect(m.error).toMatchObject({ code: 'bad_input', details: 'tensor h.11.mlp.c_proj.weight' })
    expect(m.path).toBe('/models/broken')
    expect(useErrorStore().toasts).toHaveLength(0)
    expect(useErrorStore().entries).toHaveLength(1)
  })

  it('ignores the answer for a folder the user has already moved away from', async () => {
    const slow = deferred<typeof modelInfo>()
    fake.handlers['models.inspect'] = ({ path }) => (path === '/models/slow' ? slow.promise : { ...modelInfo, path })
    const m = useModelStore()
    const first = m.inspect('/models/slow')
    await m.inspect('/models/fast')
    slow.resolve({ ...modelInfo, path: '/models/slow' })
    expect(await first).toBeNull()
    expect(m.info?.path).toBe('/models/fast')
    expect(m.loading).toBe(false)
  })

  it('ignores a late failure too, and reset forgets everything', async () => {
    const slow = deferred<typeof modelInfo>()
    fake.handlers['models.inspect'] = ({ path }) => (path === '/models/slow' ? slow.promise : { ...modelInfo, path })
    const m = useModelStore()
    const first = m.inspect('/models/slow')
    await m.inspect('/models/fast')
    slow.reject(new ApiError('not_found', 'gone'))
    await first
    expect(m.error).toBeNull()
    m.reset()
    expect([m.path, m.info, m.error, m.loading]).toEqual([null, null, null, false])
  })
})

describe('useConnectionStore', () => {
  it('treats a client without connection reporting as always open', () => {
    const c = useConnectionStore()
    expect(c.state).toBe('open')
    expect(c.reconnecting).toBe(false)
  })
})
