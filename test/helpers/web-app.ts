// Starts the built app in web mode as a user would (node out/main/web.js), in a child process
// with its own config and data folders, and drives Debian's chromium through playwright-core.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { isolatedEnv } from './temp.ts'

const root = join(import.meta.dirname, '../..')
export const screenshotDir = join(root, 'test-results/screenshots')

export interface RunningApp {
  url: string // with the token
  origin: string
  process: ChildProcess
  stop(): Promise<void>
}

export async function startWebApp(workDir: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<RunningApp> {
  const entry = join(root, 'out/main/web.js')
  if (!existsSync(entry)) throw new Error('out/main/web.js is missing: run `npm run build` first')
  const child = spawn(process.execPath, [entry, '--no-open'], {
    env: { ...isolatedEnv(workDir), ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`web mode did not start:\n${output}`)), 30_000)
    const onData = (d: Buffer) => {
      output += d.toString()
      const m = output.match(/(http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)/)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.on('exit', (code) => reject(new Error(`web mode exited with ${code}:\n${output}`)))
  })
  return {
    url,
    origin: new URL(url).origin,
    process: child,
    async stop() {
      if (child.exitCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    },
  }
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
  })
}

// Every request of the page `latencyMs` late, as on a busy machine: a UI that depends on the
// order its answers come in fails here rather than only on a slower CI machine.
export async function slowNetwork(page: Page, latencyMs: number): Promise<void> {
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Network.enable')
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: latencyMs, downloadThroughput: -1, uploadThroughput: -1 })
}

export async function shot(page: Page, name: string): Promise<void> {
  await mkdir(screenshotDir, { recursive: true })
  await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true })
}
