#!/usr/bin/env node
// `npm start`: build what is stale, then run the desktop app if an Electron binary is installed,
// or web mode otherwise (or with --web). `npm run serve` is always web mode, no browser opened.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..')
const args = process.argv.slice(2)
const forceWeb = args.includes('--web')
const passThrough = args.filter((a) => a !== '--web')

function newestMtime(dir) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return newest
}

function buildIfStale() {
  const built = join(root, 'out/main/web.js')
  const stale =
    !existsSync(built) ||
    Math.max(newestMtime(join(root, 'src-main')), newestMtime(join(root, 'src-renderer'))) > statSync(built).mtimeMs
  if (!stale) return
  console.log('Building the app…')
  const r = spawnSync(process.execPath, [join(root, 'node_modules/electron-vite/bin/electron-vite.js'), 'build'], {
    cwd: root,
    stdio: 'inherit',
  })
  if (r.status !== 0) process.exit(r.status ?? 1)
}

// The electron package's index returns the binary path, but throws when the binary was never
// downloaded (as on machines that cannot reach Electron's download host).
function electronBinary() {
  try {
    const p = createRequire(import.meta.url)('electron')
    return typeof p === 'string' && existsSync(p) ? p : null
  } catch {
    return null
  }
}

buildIfStale()
const electron = forceWeb ? null : electronBinary()
const child = electron
  ? spawn(electron, [root, ...passThrough], { stdio: 'inherit' })
  : (() => {
      if (!forceWeb) console.log('No Electron binary installed: starting web mode.')
      return spawn(process.execPath, [join(root, 'out/main/web.js'), ...passThrough], { stdio: 'inherit' })
    })()
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig))
child.on('exit', (code) => process.exit(code ?? 0))
