// `npm start -- --web` / `npm run serve` as a user runs them: the launcher builds if needed,
// starts web mode on 127.0.0.1 and prints the address with the token.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { isolatedEnv, tempDir } from '../helpers/temp.ts'

const root = join(import.meta.dirname, '../..')
let stop: (() => void) | null = null
afterAll(() => stop?.())

it('npm start --web serves the app behind its token', async () => {
  const dir = await tempDir()
  const child = spawn(process.execPath, [join(root, 'scripts/start.mjs'), '--web', '--no-open'], {
    cwd: root,
    env: isolatedEnv(dir.path),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  stop = () => child.kill('SIGTERM')
  let out = ''
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no address printed:\n${out}`)), 90_000)
    const onData = (d: Buffer) => {
      out += d.toString()
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+/)
      if (m) {
        clearTimeout(timer)
        resolve(m[0])
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
  })
  const origin = new URL(url).origin
  expect((await fetch(`${origin}/`)).status).toBe(401)
  const page = await fetch(url, { redirect: 'manual' })
  expect(page.status).toBe(303)
  expect(page.headers.get('set-cookie')).toContain('HttpOnly')
  child.kill('SIGTERM')
  await dir.cleanup()
}, 120_000)
