// The web transport over real sockets: token, cookie, Host/Origin checks, API mapping, events.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { createCore, type Core } from '../../src-main/core/core.ts'
import { createNativeProbe } from '../../src-main/core/native-probe.ts'
import { startWebServer, type WebServer } from '../../src-main/transports/web-server.ts'
import { isolatedEnv, tempDir } from '../helpers/temp.ts'

let dir: Awaited<ReturnType<typeof tempDir>>
let core: Core
let server: WebServer
let cookie: string

beforeAll(async () => {
  dir = await tempDir()
  const staticDir = join(dir.path, 'static')
  await mkdir(staticDir)
  await writeFile(join(staticDir, 'index.html'), '<!doctype html><title>t</title>')
  await writeFile(join(dir.path, 'secret.txt'), 'outside the static root')
  core = await createCore({ mode: 'web', native: createNativeProbe(), env: isolatedEnv(dir.path) })
  server = await startWebServer({ core, staticDir })
  cookie = `longctx_token=${server.token}`
})

afterAll(async () => {
  await server?.close()
  await core?.dispose()
  await dir?.cleanup()
})

// fetch's json() is typed unknown; these tests inspect bodies field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = (r: Response): Promise<any> => r.json()

const api = (name: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${server.origin}/api/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie, ...headers },
    body: JSON.stringify(body),
  })

describe('web transport', () => {
  it('binds to 127.0.0.1 only', () => {
    expect(server.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
  })

  it('refuses the page, assets and API without the token', async () => {
    expect((await fetch(`${server.origin}/`)).status).toBe(401)
    expect((await fetch(`${server.origin}/index.html`)).status).toBe(401)
    const r = await fetch(`${server.origin}/api/system.info`, { method: 'POST', body: '{}' })
    expect(r.status).toBe(401)
    expect((await json(r)).code).toBe('unauthorized')
  })

  it('refuses a wrong token with 403', async () => {
    expect((await fetch(`${server.origin}/?token=nope`, { redirect: 'manual' })).status).toBe(403)
    const r = await api('app.info', {}, { cookie: 'longctx_token=wrong' })
    expect(r.status).toBe(403)
  })

  it('trades the URL token for an HttpOnly cookie and strips it from the address', async () => {
    const r = await fetch(server.url, { redirect: 'manual' })
    expect(r.status).toBe(303)
    expect(r.headers.get('location')).toBe('/')
    const setCookie = r.headers.get('set-cookie') ?? ''
    expect(setCookie).toContain(`longctx_token=${server.token}`)
    expect(setCookie).toContain('HttpOnly')
    expect(setCookie).toContain('SameSite=Strict')
    const page = await fetch(`${server.origin}/`, { headers: { cookie } })
    expect(page.status).toBe(200)
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'")
  })

  it('accepts a bearer token too (for scripts)', async () => {
    const r = await fetch(`${server.origin}/api/app.info`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token}` },
      body: '{}',
    })
    expect(r.status).toBe(200)
    expect((await json(r)).mode).toBe('web')
  })

  it('refuses other origins and other Host names', async () => {
    const r = await api('app.info', {}, { origin: 'http://evil.example' })
    expect(r.status).toBe(403)
    const ok = await api('app.info', {}, { origin: server.origin })
    expect(ok.status).toBe(200)
    // DNS rebinding: a foreign Host header is refused even with the token.
    const { request } = await import('node:http')
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.origin}/api/app.info`, {
        method: 'POST',
        headers: { host: 'attacker.example', cookie },
      })
      req.on('response', (res) => resolve(res.statusCode ?? 0))
      req.on('error', reject)
      req.end('{}')
    })
    expect(status).toBe(403)
  })

  it('maps validation errors, unknown methods and core errors to typed bodies', async () => {
    const bad = await api('fs.list', { path: 42 })
    expect(bad.status).toBe(400)
    const body = await json(bad)
    expect(body.code).toBe('invalid_argument')
    expect(body.details).toMatch(/path/)

    const extra = await api('settings.update', { theme: 'dark', evil: true })
    expect(extra.status).toBe(400)

    const unknown = await api('system.rm_rf', {})
    expect(unknown.status).toBe(404)
    expect((await json(unknown)).code).toBe('unknown_method')

    const missing = await api('fs.list', { path: join(dir.path, 'does-not-exist') })
    expect(missing.status).toBe(404)
    expect((await json(missing)).message).toContain('does not exist')

    const notJson = await fetch(`${server.origin}/api/app.info`, { method: 'POST', headers: { cookie }, body: '{' })
    expect(notJson.status).toBe(400)
  })

  it('serves nothing outside the static folder', async () => {
    const r = await fetch(`${server.origin}/..%2Fsecret.txt`, { headers: { cookie } })
    expect(r.status).toBe(404)
    const r2 = await fetch(`${server.origin}/%2e%2e/secret.txt`, { headers: { cookie } })
    expect(r2.status).toBe(404)
  })

  it('answers system.info with real figures', async () => {
    const info = await json(await api('system.info', {}))
    expect(info.cpuCores).toBeGreaterThan(0)
    expect(info.totalRamBytes).toBeGreaterThan(info.freeRamBytes)
    expect(info.dataDir).toBe(join(dir.path, 'data'))
    expect(info.dataDirTotalBytes).toBeGreaterThan(0)
    expect(info.backends).toContain('cpu')
    expect(typeof info.gpuStatus).toBe('string')
  })

  it('pushes events over the socket only to authorized clients', async () => {
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${server.origin.replace('http', 'ws')}/events`)
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
      ws.on('open', () => resolve(101))
      ws.on('error', () => undefined)
    })
    expect(refused).toBe(401)

    const ws = new WebSocket(`${server.origin.replace('http', 'ws')}/events`, { headers: { cookie, origin: server.origin } })
    await new Promise((resolve, reject) => {
      ws.on('open', resolve)
      ws.on('error', reject)
    })
    const received = new Promise<{ event: string; payload: { theme: string } }>((resolve) => {
      ws.on('message', (data) => {
        const msg = JSON.parse(String(data))
        if (msg.event === 'settings.changed') resolve(msg)
      })
    })
    const r = await api('settings.update', { theme: 'light' })
    expect(r.status).toBe(200)
    const msg = await received
    expect(msg.payload.theme).toBe('light')
    ws.close()
  })
})
