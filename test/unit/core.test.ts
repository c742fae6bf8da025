// The core's services on a real file system: settings, the folder browser, validation.
import { mkdir, writeFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiError } from '../../src-main/api/contract.ts'
import { createCore, type Core } from '../../src-main/core/core.ts'
import { createNativeProbe } from '../../src-main/core/native-probe.ts'
import { defaultDataDir } from '../../src-main/core/paths.ts'
import { isolatedEnv, tempDir } from '../helpers/temp.ts'

let dir: Awaited<ReturnType<typeof tempDir>>
let core: Core

beforeAll(async () => {
  dir = await tempDir()
  core = await createCore({ mode: 'web', native: createNativeProbe(), env: isolatedEnv(dir.path) })
  await mkdir(join(dir.path, 'browse/sub'), { recursive: true })
  await writeFile(join(dir.path, 'browse/b.txt'), 'hello')
  await writeFile(join(dir.path, 'browse/.hidden'), 'x')
})
afterAll(async () => {
  await core.dispose()
  await dir.cleanup()
})

async function callError(name: string, args: unknown): Promise<ApiError> {
  try {
    await core.call(name, args)
  } catch (err) {
    return err as ApiError
  }
  throw new Error(`${name} did not fail`)
}

describe('core', () => {
  it('lists folders first, hides dot files unless asked, and knows the parent', async () => {
    const listing = (await core.call('fs.list', { path: join(dir.path, 'browse') })) as {
      parent: string
      entries: { name: string; kind: string; sizeBytes: number }[]
    }
    expect(listing.entries.map((e) => e.name)).toEqual(['sub', 'b.txt'])
    expect(listing.entries[1].sizeBytes).toBe(5)
    expect(listing.parent).toBe(dir.path)
    const all = (await core.call('fs.list', { path: join(dir.path, 'browse'), showHidden: true })) as {
      entries: { name: string }[]
    }
    expect(all.entries.map((e) => e.name)).toContain('.hidden')
  })

  it('says clearly when a folder cannot be listed', async () => {
    const missing = await callError('fs.list', { path: join(dir.path, 'nope') })
    expect(missing.code).toBe('not_found')
    const file = await callError('fs.list', { path: join(dir.path, 'browse/b.txt') })
    expect(file.code).toBe('invalid_argument')
    expect(file.message).toContain('not a folder')
  })

  it('validates arguments before any handler runs', async () => {
    const err = await callError('settings.update', { theme: 'purple' })
    expect(err.code).toBe('invalid_argument')
    expect(err.details).toContain('theme')
    const nul = await callError('fs.list', { path: '/tmp/\0evil' })
    expect(nul.code).toBe('invalid_argument')
  })

  it('persists settings and refuses a data folder it cannot use', async () => {
    const target = join(dir.path, 'new-data')
    const saved = (await core.call('settings.update', { dataDir: target, theme: 'dark' })) as { dataDir: string }
    expect(saved.dataDir).toBe(target)
    const onDisk = JSON.parse(await readFile(join(dir.path, 'config/settings.json'), 'utf8'))
    expect(onDisk.theme).toBe('dark')

    const aFile = await callError('settings.update', { dataDir: join(dir.path, 'browse/b.txt') })
    expect(aFile.code).toBe('invalid_argument')
    const underAFile = await callError('settings.update', { dataDir: join(dir.path, 'browse/b.txt/inside') })
    expect(underAFile.code).toBe('permission')
    const relative = await callError('settings.update', { dataDir: 'relative/path' })
    expect(relative.code).toBe('invalid_argument')
  })

  it('answers dialog.pick with native:false when no native dialog exists (web mode)', async () => {
    expect(await core.call('dialog.pick', { kind: 'folder' })).toEqual({ path: null, native: false })
  })

  it('picks the data folder by OS convention', () => {
    const home = { HOME: '/home/u' } as NodeJS.ProcessEnv
    expect(defaultDataDir({ XDG_DATA_HOME: '/x' } as NodeJS.ProcessEnv, 'linux')).toBe('/x/longctx-studio')
    expect(defaultDataDir(home, 'darwin')).toMatch(/Library\/Application Support\/LongCtx Studio\/data$/)
    expect(defaultDataDir({ LOCALAPPDATA: 'C:\\L' } as NodeJS.ProcessEnv, 'win32')).toContain('LongCtx Studio')
  })
})
