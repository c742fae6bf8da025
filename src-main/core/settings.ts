// User settings: one small JSON file in the config folder. The data folder must be a folder the
// app can write to; anything else is refused with a message that says what to do.
import { access, mkdir, readFile, stat } from 'node:fs/promises'
import { constants } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { ApiError, type Settings } from '../api/contract.ts'
import { writeFileAtomic } from './atomic-file.ts'
import { defaultConfigDir, defaultDataDir } from './paths.ts'

const stored = z
  .object({
    dataDir: z.string().min(1).optional(),
    theme: z.enum(['system', 'dark', 'light']).optional(),
    backend: z.enum(['auto', 'cpu', 'cuda']).optional(),
  })
  .passthrough()

export class SettingsService {
  private current: Settings
  private readonly file: string

  private constructor(file: string, current: Settings) {
    this.file = file
    this.current = current
  }

  // A missing or unreadable settings file falls back to defaults rather than stopping the app;
  // environment overrides (LONGCTX_DATA_DIR) win so tests and servers can pin the folder.
  static async open(env: NodeJS.ProcessEnv = process.env): Promise<SettingsService> {
    const dir = defaultConfigDir(env)
    const file = join(dir, 'settings.json')
    let saved: z.infer<typeof stored> = {}
    try {
      saved = stored.parse(JSON.parse(await readFile(file, 'utf8')))
    } catch {
      saved = {}
    }
    const settings: Settings = {
      dataDir: env.LONGCTX_DATA_DIR || saved.dataDir || defaultDataDir(env),
      theme: saved.theme ?? 'system',
      backend: saved.backend ?? 'auto',
    }
    await mkdir(settings.dataDir, { recursive: true }).catch(() => undefined)
    return new SettingsService(file, settings)
  }

  get(): Settings {
    return { ...this.current }
  }

  async update(patch: Partial<Settings>): Promise<Settings> {
    const next = { ...this.current, ...patch }
    if (patch.dataDir !== undefined && patch.dataDir !== this.current.dataDir) {
      await ensureWritableFolder(patch.dataDir)
    }
    await mkdir(join(this.file, '..'), { recursive: true })
    await writeFileAtomic(this.file, JSON.stringify(next, null, 2) + '\n')
    this.current = next
    return this.get()
  }
}

export async function ensureWritableFolder(path: string): Promise<void> {
  if (!path.startsWith('/') && !/^[A-Za-z]:[\\/]/.test(path)) {
    throw new ApiError('invalid_argument', `The data folder must be an absolute path: "${path}".`)
  }
  try {
    const info = await stat(path)
    if (!info.isDirectory()) {
      throw new ApiError('invalid_argument', `"${path}" is a file, not a folder. Pick a folder for the app's data.`)
    }
  } catch (err) {
    if (err instanceof ApiError) throw err
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw permissionError(path, err)
    try {
      await mkdir(path, { recursive: true })
    } catch (mkErr) {
      throw permissionError(path, mkErr)
    }
  }
  try {
    await access(path, constants.W_OK | constants.R_OK)
  } catch (err) {
    throw permissionError(path, err)
  }
}

function permissionError(path: string, err: unknown): ApiError {
  const code = (err as NodeJS.ErrnoException).code ?? 'error'
  return new ApiError(
    'permission',
    `The app cannot write to "${path}" (${code}). Pick a folder you own, or fix its permissions.`,
  )
}
