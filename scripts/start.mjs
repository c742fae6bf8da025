#!/usr/bin/env node
// `npm start`: build what is stale, then run the desktop app if an Electron binary is installed,
// or web mode otherwise (or with --web). `npm run serve` is always web mode, no browser opened.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

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

// Electron's binary is fetched by its package (install script, or lazily on first require);
// npm 11 skips dependencies' install scripts, and offline the fetch fails. Look for the binary
// without triggering a download, try one quiet download, and fall back to web mode.
const electronDir = (() => {
  try {
    return dirname(createRequire(import.meta.url).resolve('electron/package.json'))
  } catch {
    return null
  }
})()

function electronBinary() {
  if (!electronDir) return null
  const pathFile = join(electronDir, 'path.txt')
  if (!existsSync(pathFile)) return null
  const binary = join(electronDir, 'dist', readFileSync(pathFile, 'utf8').trim())
  return existsSync(binary) ? binary : null
}

function fetchElectron() {
  if (!electronDir || !existsSync(join(electronDir, 'install.js'))) return null
  console.log('Electron is not downloaded yet; fetching it (once)…')
  const r = spawnSync(process.execPath, [join(electronDir, 'install.js')], { stdio: 'pipe', timeout: 180_000 })
  if (r.status !== 0) {
    console.log('Could not download Electron (offline, or its download host is unreachable).')
    return null
  }
  return electronBinary()
}

buildIfStale()
const electron = forceWeb ? null : (electronBinary() ?? fetchElectron())
const child = electron
  ? spawn(electron, [root, ...passThrough], { stdio: 'inherit' })
  : (() => {
      if (!forceWeb) console.log('No Electron binary installed: starting web mode.')
      return spawn(process.execPath, [join(root, 'out/main/web.js'), ...passThrough], { stdio: 'inherit' })
    })()
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig))
child.on('exit', (code) => process.exit(code ?? 0))
