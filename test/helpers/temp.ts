import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// A fresh folder per test file, removed afterwards.
export async function tempDir(prefix = 'longctx-test-'): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix))
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) }
}

// Environment that points the core's config and data folders into a temp folder.
export function isolatedEnv(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, LONGCTX_CONFIG_DIR: join(dir, 'config'), LONGCTX_DATA_DIR: join(dir, 'data') }
}
