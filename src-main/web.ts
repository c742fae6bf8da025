// Web mode entry: the same core behind HTTP + WebSocket on 127.0.0.1, for machines without an
// Electron binary and for headless GPU servers reached through an SSH tunnel.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createCore } from './core/core.ts'
import { createNativeProbe } from './core/native-probe.ts'
import { startWebServer } from './transports/web-server.ts'

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: process.env.LONGCTX_PORT ?? '0' },
      open: { type: 'boolean', default: true },
      'no-open': { type: 'boolean', default: false },
    },
    allowPositionals: true,
  })
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`error: --port must be a number from 0 to 65535, got "${values.port}"`)
    process.exit(2)
  }
  const staticDir = join(import.meta.dirname, '../renderer')
  if (!existsSync(join(staticDir, 'index.html'))) {
    console.error('error: the UI is not built; run `npm run build` first')
    process.exit(1)
  }
  const core = await createCore({ mode: 'web', native: createNativeProbe() })
  const server = await startWebServer({ core, staticDir, port })
  console.log(`LongCtx Studio (web mode) is running at:\n\n  ${server.url}\n`)
  console.log('Only this machine can reach it; the link carries this launch\'s access token.')
  console.log('On a remote GPU server: ssh -L PORT:127.0.0.1:PORT server, then open the link locally.')
  if (values.open && !values['no-open']) openBrowser(server.url)

  const shutdown = async () => {
    await server.close()
    await core.dispose()
    process.exit(0)
  }
  process.on('SIGINT', shutdown)
  process.on('SIGTERM', shutdown)
}

function openBrowser(url: string) {
  const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'cmd' : 'xdg-open'
  const args = process.platform === 'win32' ? ['/c', 'start', '', url] : [url]
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) return
  try {
    const child = spawn(cmd, args, { stdio: 'ignore', detached: true })
    child.on('error', () => undefined) // no browser opener: the printed URL is enough
    child.unref()
  } catch {
    // same: printing the URL is the fallback
  }
}

main().catch((err) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
})
