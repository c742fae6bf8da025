// The C++ test executables of native/tests, one vitest case each, so `npm test` covers them.
// Builds them with CMake into native/build/ctest (two jobs: the dev machines share two cores);
// the build step is skipped when nothing under native/ changed since the last good build.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')
const nativeDir = join(root, 'native')
const buildDir = join(nativeDir, 'build', 'ctest')
const stamp = join(buildDir, '.lcx-built')
const jobs = process.env.LCX_BUILD_JOBS ?? '2'

const testNames = existsSync(join(nativeDir, 'tests'))
  ? readdirSync(join(nativeDir, 'tests'))
      .filter((f) => /^test_.*\.cpp$/.test(f))
      .map((f) => f.replace(/\.cpp$/, ''))
      .sort()
  : []

function newestSourceMs(): number {
  let newest = statSync(join(nativeDir, 'CMakeLists.txt')).mtimeMs
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else newest = Math.max(newest, statSync(p).mtimeMs)
    }
  }
  for (const d of ['engine', 'tests', 'bench']) if (existsSync(join(nativeDir, d))) walk(join(nativeDir, d))
  return newest
}

function run(cmd: string, args: string[]): { code: number; output: string } {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 })
  return { code: r.status ?? 1, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` }
}

let buildError: string | null = null

beforeAll(() => {
  if (testNames.length === 0) return
  const upToDate = existsSync(stamp) && statSync(stamp).mtimeMs >= newestSourceMs()
  if (upToDate) return
  if (!existsSync(join(buildDir, 'CMakeCache.txt'))) {
    const cfg = run('cmake', ['-S', nativeDir, '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release'])
    if (cfg.code !== 0) {
      buildError = `cmake configure failed:\n${cfg.output.slice(-8000)}`
      return
    }
  }
  const build = run('cmake', ['--build', buildDir, '--parallel', jobs])
  if (build.code !== 0) {
    buildError = `cmake --build failed:\n${build.output.slice(-8000)}`
    return
  }
  writeFileSync(stamp, new Date().toISOString())
}, 1_800_000)

describe('native C++ tests', () => {
  it('has C++ tests to run', () => {
    expect(testNames.length).toBeGreaterThan(0)
  })

  for (const name of testNames) {
    it(name, async () => {
      expect(buildError, buildError ?? '').toBeNull()
      const exe = join(buildDir, name)
      expect(existsSync(exe), `${exe} was not built`).toBe(true)
      const { code, output } = await new Promise<{ code: number | null; output: string }>((done) => {
        const child = spawn(exe, [], { cwd: buildDir })
        let output = ''
        child.stdout.on('data', (d) => (output += d))
        child.stderr.on('data', (d) => (output += d))
        child.on('close', (code, signal) => done({ code: signal ? -1 : code, output: signal ? `${output}\nkilled by ${signal}` : output }))
      })
      // The executable's own output is the failure message.
      expect(code, `${name} exited with ${code}:\n${output.slice(-12000)}`).toBe(0)
    }, 600_000)
  }

  // The GPU benchmark's own flow on a tiny model (the CPU backend here): its JSON rows, and the
  // allocator mix's peak measured before the larger batches run (run 8's mix read the batch-6
  // buffers: 24.26 GiB instead of the mix's own).
  it('gpu_train_bench --smoke: batch rows at the first and third lengths, and a mix peak of its own', async () => {
    expect(buildError, buildError ?? '').toBeNull()
    const exe = join(buildDir, 'gpu_train_bench')
    expect(existsSync(exe), `${exe} was not built`).toBe(true)
    const json = join(buildDir, 'smoke-bench.json')
    const r = spawnSync(exe, ['--smoke', '--parts', 'dense', '--json', json], { encoding: 'utf8' })
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0)
    const out = JSON.parse(readFileSync(json, 'utf8')) as {
      dense: { T: number; batch: number; tok_s: number; peak_mapped_gib: number }[]
      mix: { lengths: number[]; expandable: [number, number] }
    }
    const first = out.dense.filter((d) => d.T === out.mix.lengths[0])
    expect(first.map((d) => d.batch)).toEqual([1, 4, 6, 8])
    // The third length (8192 on the GPU) also runs batch 2.
    expect(out.dense.filter((d) => d.T === out.mix.lengths[2]).map((d) => d.batch)).toEqual([1, 2])
    expect(first.every((d) => d.tok_s > 0)).toBe(true)
    const batch8 = first.find((d) => d.batch === 8)!.peak_mapped_gib
    const batch1Max = Math.max(...out.dense.filter((d) => d.batch === 1 && out.mix.lengths.includes(d.T)).map((d) => d.peak_mapped_gib))
    expect(batch8).toBeGreaterThan(batch1Max) // else the check below could not tell
    expect(out.mix.expandable[0]).toBeLessThanOrEqual(batch1Max + 0.002)
  }, 600_000)
})
