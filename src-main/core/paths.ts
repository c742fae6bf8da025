// Where the app keeps its files, by OS convention. The data folder (models cache, datasets, runs)
// can be moved in Settings; the settings file itself stays in the per-user config folder.
import { homedir } from 'node:os'
import { join } from 'node:path'

const APP_DIR = 'longctx-studio'

export function defaultConfigDir(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (env.LONGCTX_CONFIG_DIR) return env.LONGCTX_CONFIG_DIR
  if (platform === 'win32') return join(env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), 'LongCtx Studio')
  if (platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'LongCtx Studio')
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), APP_DIR)
}

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (env.LONGCTX_DATA_DIR) return env.LONGCTX_DATA_DIR
  if (platform === 'win32') return join(env.LOCALAPPDATA ?? join(homedir(), 'AppData', 'Local'), 'LongCtx Studio', 'data')
  if (platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'LongCtx Studio', 'data')
  return join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), APP_DIR)
}

// Sub-folders of the data folder, one job each.
export function dataLayout(dataDir: string) {
  return {
    models: join(dataDir, 'models'),
    datasets: join(dataDir, 'datasets'),
    runs: join(dataDir, 'runs'),
    exports: join(dataDir, 'exports'),
  }
}
