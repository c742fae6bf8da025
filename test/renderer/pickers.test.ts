import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { effectScope, ref } from 'vue'
import { ApiError, type FsEntry, type FsListing } from '@contract'
import { installApiClient } from '@/api'
import { sortEntries, useFileBrowser } from '@/composables/useFileBrowser'
import { usePathPicker } from '@/composables/usePathPicker'
import { useErrorStore } from '@/stores/errors'
import { FakeApi, deferred } from './fake-api'

function entry(name: string, kind: 'dir' | 'file', dir = '/home/ann'): FsEntry {
  return { name, path: `${dir}/${name}`, kind, sizeBytes: kind === 'file' ? 1000 : 0, modifiedMs: 1, hidden: name.startsWith('.') }
}

// A little file system: the server filters hidden entries unless asked for them.
const TREE: Record<string, FsEntry[]> = {
  '/home/ann': [entry('notes.txt', 'file'), entry('models', 'dir'), entry('.cache', 'dir'), entry('Datasets', 'dir')],
  '/home/ann/models': [entry('gpt2', 'dir', '/home/ann/models'), entry('README.md', 'file', '/home/ann/models')],
  '/data': [],
}

let fake: FakeApi

beforeEach(() => {
  fake = new FakeApi('web', {
    'dialog.pick': () => ({ path: null, native: false }),
    'fs.places': () => ({ home: '/home/ann', dataDir: '/data', roots: ['/'] }),
    'fs.list': ({ path, showHidden }): FsListing => {
      if (path === '/root') throw new ApiError('permission', 'The app may not read /root.', 'EACCES')
      const entries = TREE[path]
      if (!entries) throw new ApiError('not_found', `No folder at ${path}.`)
      const parent = path === '/' ? null : path.slice(0, path.lastIndexOf('/')) || '/'
      return { path, parent, entries: showHidden ? entries : entries.filter((e) => !e.hidden) }
    },
  })
  installApiClient(fake)
  setActivePinia(createPinia())
})

afterEach(() => {
  installApiClient(null)
})

describe('usePathPicker', () => {
  it('returns the native dialog result directly (Electron)', async () => {
    fake.handlers['dialog.pick'] = () => ({ path: '/models/gpt2', native: true })
    const scope = effectScope()
    const picker = scope.run(() => usePathPicker())!
    expect(await picker.pick({ kind: 'folder', title: 'Model' })).toBe('/models/gpt2')
    expect(picker.browser.value).toBeNull()
    expect(picker.picking.value).toBe(false)
    expect(fake.callsOf('dialog.pick')[0].args).toEqual({ kind: 'folder', title: 'Model' })
    scope.stop()
  })

  it('opens the in-app browser in web mode and resolves with the choice', async () => {
    const scope = effectScope()
    const picker = scope.run(() => usePathPicker())!
    const result = picker.pick({ kind: 'file', defaultPath: '/home/ann' })
    await new Promise((r) => setTimeout(r, 0))
    expect(picker.browser.value).toEqual({ kind: 'file', defaultPath: '/home/ann' })
    expect(picker.picking.value).toBe(true)
    picker.choose('/home/ann/notes.txt')
    expect(await result).toBe('/home/ann/notes.txt')
    expect(picker.browser.value).toBeNull()
    scope.stop()
  })

  it('resolves null on cancel, on a superseding pick and when its scope ends', async () => {
    const scope = effectScope()
    const picker = scope.run(() => usePathPicker())!
    const tick = () => new Promise((r) => setTimeout(r, 0))

    const cancelled = picker.pick({ kind: 'folder' })
    await tick()
    picker.cancel()
    expect(await cancelled).toBeNull()

    const superseded = picker.pick({ kind: 'folder' })
    await tick()
    const latest = picker.pick({ kind: 'file' })
    expect(await superseded).toBeNull()
    await tick()
    expect(picker.browser.value?.kind).toBe('file')

    scope.stop()
    expect(await latest).toBeNull()
  })

  it('reports a failing dialog.pick and resolves null', async () => {
    fake.handlers['dialog.pick'] = () => {
      throw new ApiError('internal', 'dialog crashed')
    }
    const scope = effectScope()
    const picker = scope.run(() => usePathPicker())!
    expect(await picker.pick({ kind: 'folder' })).toBeNull()
    expect(useErrorStore().toasts[0]).toMatchObject({ message: 'dialog crashed', source: 'dialog.pick' })
    scope.stop()
  })
})

describe('useFileBrowser', () => {
  function setup(kind: 'file' | 'folder' = 'folder') {
    const k = ref(kind)
    const scope = effectScope()
    const fb = scope.run(() => useFileBrowser(k))!
    return { fb, k, scope }
  }

  it('sorts folders first, then names naturally and case-insensitively', () => {
    const names = sortEntries([
      entry('run10', 'dir'),
      entry('b.txt', 'file'),
      entry('run2', 'dir'),
      entry('A.txt', 'file'),
      entry('alpha', 'dir'),
    ]).map((e) => e.name)
    expect(names).toEqual(['alpha', 'run2', 'run10', 'A.txt', 'b.txt'])
  })

  it('starts in the requested folder with hidden entries filtered', async () => {
    const { fb } = setup()
    await fb.init('/home/ann')
    expect(fb.places.value?.home).toBe('/home/ann')
    expect(fb.listing.value?.path).toBe('/home/ann')
    expect(fb.entries.value.map((e) => e.name)).toEqual(['Datasets', 'models', 'notes.txt'])
    expect(fb.error.value).toBeNull()
  })

  it('falls back to the data folder when the start folder is unreadable, keeping the reason visible', async () => {
    const { fb } = setup()
    await fb.init('/root')
    expect(fb.listing.value?.path).toBe('/data')
    expect(fb.error.value).toMatchObject({ code: 'permission', message: 'The app may not read /root.' })
    // shown in the modal, so not toasted
    expect(useErrorStore().toasts).toHaveLength(0)
  })

  it('enters folders, goes up, and shows an unreadable folder inline without losing the listing', async () => {
    const { fb } = setup()
    await fb.init('/home/ann')
    await fb.activate(fb.entries.value.find((e) => e.name === 'models')!)
    expect(fb.listing.value?.path).toBe('/home/ann/models')
    await fb.up()
    expect(fb.listing.value?.path).toBe('/home/ann')
    expect(await fb.open('/root')).toBe(false)
    expect(fb.error.value?.code).toBe('permission')
    expect(fb.listing.value?.path).toBe('/home/ann')
    await fb.open('/home/ann/models')
    expect(fb.error.value).toBeNull()
  })

  it('re-lists with hidden files when toggled', async () => {
    const { fb } = setup()
    await fb.init('/home/ann')
    await fb.setShowHidden(true)
    expect(fb.entries.value.map((e) => e.name)).toContain('.cache')
    expect(fake.callsOf('fs.list').at(-1)?.args).toEqual({ path: '/home/ann', showHidden: true })
    await fb.setShowHidden(false)
    expect(fb.entries.value.map((e) => e.name)).not.toContain('.cache')
  })

  it('selects the current folder, or a highlighted subfolder, in folder mode', async () => {
    const { fb } = setup('folder')
    await fb.init('/home/ann')
    expect(fb.selection.value).toBe('/home/ann')
    fb.highlight('models')
    expect(fb.selection.value).toBe('/home/ann/models')
    fb.highlight('notes.txt') // files cannot be chosen as folders
    expect(fb.selection.value).toBe('/home/ann')
    expect(await fb.activate(fb.entries.value.find((e) => e.name === 'notes.txt')!)).toBeNull()
  })

  it('selects only files in file mode; activating a file chooses it', async () => {
    const { fb } = setup('file')
    await fb.init('/home/ann')
    expect(fb.selection.value).toBeNull()
    fb.highlight('models')
    expect(fb.selection.value).toBeNull()
    const notes = fb.entries.value.find((e) => e.name === 'notes.txt')!
    expect(await fb.activate(notes)).toBe('/home/ann/notes.txt')
    expect(fb.selection.value).toBe('/home/ann/notes.txt')
  })

  it('shows the folder the user went to last, whatever order the answers come in', async () => {
    const slow = deferred<FsListing>()
    const fast = fake.handlers['fs.list']!
    fake.handlers['fs.list'] = (args) => (args.path === '/home/ann/models' ? slow.promise : fast(args))
    const { fb } = setup()
    await fb.init('/home/ann')
    const first = fb.open('/home/ann/models')
    await fb.open('/data')
    slow.resolve({ path: '/home/ann/models', parent: '/home/ann', entries: [] })
    expect(await first).toBe(false)
    expect(fb.listing.value?.path).toBe('/data')
    expect(fb.loading.value).toBe(false)
  })

  // CI caught this: a path typed while the browser was still opening was replaced by the
  // start folder's fallbacks when their answers came in later.
  it('keeps a folder the user went to while it was still opening', async () => {
    const placesAnswer = deferred<{ home: string; dataDir: string; roots: string[] }>()
    fake.handlers['fs.places'] = () => placesAnswer.promise
    const { fb } = setup()
    const opening = fb.init('/root') // unreadable, so init would fall back to /data, then home
    await fb.open('/home/ann/models')
    placesAnswer.resolve({ home: '/home/ann', dataDir: '/data', roots: ['/'] })
    await opening
    expect(fb.listing.value?.path).toBe('/home/ann/models')
    expect(fake.callsOf('fs.list').map((c) => (c.args as { path: string }).path)).toEqual(['/home/ann/models'])

    // and while a start folder's answer is on its way
    const slow = deferred<FsListing>()
    const fast = fake.handlers['fs.list']!
    fake.handlers['fs.list'] = (args) => (args.path === '/root' ? slow.promise : fast(args))
    const again = setup().fb
    const reopening = again.init('/root')
    await new Promise((r) => setTimeout(r, 0))
    await again.open('/home/ann')
    slow.reject(new ApiError('permission', 'The app may not read /root.', 'EACCES'))
    await reopening
    expect(again.listing.value?.path).toBe('/home/ann')
    expect(again.error.value).toBeNull()
  })
})
