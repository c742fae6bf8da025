#!/usr/bin/env node
// Builds native/build/addon/Release/longctx_addon.node with cmake-js (run by `npm install` as
// postinstall, and by `npm run build:native` which passes --force).
//
//   node scripts/build-native.mjs            build unless the addon is newer than every source
//   node scripts/build-native.mjs --force    run the build (cmake decides what is stale)
//   node scripts/build-native.mjs --clean    delete the build folder first (e.g. after
//                                            installing the CUDA toolkit: CMake caches detection)
//
// Offline: cmake-js only needs Node's headers, and it downloads them unless npm's `nodedir`
// points at an installation that has include/node/node_api.h. We pass the running Node's own
// prefix when npm has not set one (Debian's nodejs and the official tarballs both ship the
// headers there), so no network is touched.
//
// A failed build exits non-zero with the compiler/CMake errors repeated at the end: a broken
// engine must fail `npm install` loudly, not leave an app that cannot load its engine.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const nativeDir = path.join(root, 'native')
const outDir = path.join(nativeDir, 'build', 'addon')
const addonPath = path.join(outDir, 'Release', 'longctx_addon.node')

const args = new Set(process.argv.slice(2))
const force = args.has('--force') || args.has('--clean')
const clean = args.has('--clean')
// Two cores are shared by everyone on the dev machines; LCX_BUILD_JOBS overrides.
const jobs = Number(process.env.LCX_BUILD_JOBS) || Math.min(2, os.availableParallelism?.() ?? 2)

function log(msg) {
  process.stdout.write(`[build-native] ${msg}\n`)
}

function fail(msg) {
  process.stderr.write(`\n[build-native] ERROR: ${msg}\n`)
  process.exit(1)
}

// Newest modification time of the sources the addon is built from. Folder times count too:
// they change when a file is added or deleted, which the files' own times cannot show.
function newestSourceMs() {
  let newest = 0
  const walk = (dir) => {
    newest = Math.max(newest, statSync(dir).mtimeMs)
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(p)
      else if (/\.(c|cc|cpp|h|hpp|cu|cuh|txt|cmake)$/.test(entry.name)) newest = Math.max(newest, statSync(p).mtimeMs)
    }
  }
  for (const d of ['engine', 'addon']) {
    const p = path.join(nativeDir, d)
    if (existsSync(p)) walk(p)
  }
  newest = Math.max(newest, statSync(path.join(nativeDir, 'CMakeLists.txt')).mtimeMs)
  return newest
}

// A Node installation prefix with the Node-API headers, so cmake-js need not download them.
function findNodeDir() {
  const candidates = [process.env.npm_config_nodedir, path.resolve(path.dirname(process.execPath), '..')]
  for (const c of candidates) {
    if (c && existsSync(path.join(c, 'include', 'node', 'node_api.h')) && existsSync(path.join(c, 'include', 'node', 'node.h')))
      return c
  }
  return null
}

function run(cmd, argv, env) {
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
    const lines = []
    const keep = (chunk, stream) => {
      stream.write(chunk)
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(line)
      if (lines.length > 4000) lines.splice(0, lines.length - 4000)
    }
    child.stdout.on('data', (c) => keep(c, process.stdout))
    child.stderr.on('data', (c) => keep(c, process.stderr))
    child.on('error', (e) => resolve({ code: 1, lines: [...lines, String(e)] }))
    child.on('close', (code) => resolve({ code: code ?? 1, lines }))
  })
}

async function main() {
  if (!force && existsSync(addonPath) && statSync(addonPath).mtimeMs >= newestSourceMs()) {
    log(`addon is up to date (${path.relative(root, addonPath)}); use --force to rebuild`)
    return
  }
  const cmakeJs = path.join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js')
  if (!existsSync(cmakeJs)) fail('cmake-js is not installed; run `npm install` first')
  const probe = spawnSync('cmake', ['--version'], { stdio: 'ignore' })
  if (probe.status !== 0) fail('cmake was not found on PATH; install CMake >= 3.20 (e.g. `apt-get install cmake`) and run `npm run build:native`')

  const env = { ...process.env }
  const nodeDir = findNodeDir()
  if (nodeDir) env.npm_config_nodedir = nodeDir
  else log('no local Node headers found (include/node/node_api.h); cmake-js will try to download them')
  if (clean && existsSync(outDir)) {
    log(`removing ${path.relative(root, outDir)}`)
    rmSync(outDir, { recursive: true, force: true })
  }

  log(`building the native addon with cmake-js (${jobs} jobs, headers from ${nodeDir ?? 'download'})`)
  const started = Date.now()
  // `build` (configure when there is no cache, then build) rather than `compile`, which retries
  // a failed build from scratch and so doubles the time to report a compile error.
  const result = await run(
    process.execPath,
    [cmakeJs, 'build', '--directory', 'native', '--out', path.relative(root, outDir), '--target', 'longctx_addon',
      '--parallel', String(jobs), '--log-level', 'warn'],
    env,
  )
  if (result.code !== 0 || !existsSync(addonPath)) {
    const errors = result.lines.filter((l) => /error|undefined reference|CMake Error|fatal/i.test(l)).slice(0, 40)
    fail(
      'the native addon did not build.\n' +
        (errors.length ? `First errors:\n  ${errors.join('\n  ')}\n` : `Last output:\n  ${result.lines.slice(-30).join('\n  ')}\n`) +
        'Fix the error above and run `npm run build:native` (add --clean after installing or removing the CUDA toolkit).',
    )
  }
  log(`built ${path.relative(root, addonPath)} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

main().catch((e) => fail(e?.stack ?? String(e)))
