// The web transport against a real HTTP + WebSocket server on 127.0.0.1: what the renderer gets
// for successes, error bodies, non-API failures, and pushed events, including after a drop.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import { ApiError, type Settings } from '@contract'
import type { ConnectionInfo, RendererApiClient } from '@/api'
import { createWebClient, reconnectDelayMs, type SocketLike } from '@/api/web'
import { appInfo, gpu, settings } from './fake-api'

let server: Server
let wss: WebSocketServer
let origin: string
const requests: { url: string; method: string; body: string; contentType?: string }[] = []

async function readBody(req: IncomingMessage): Promise<string> {
  let body = ''
  for await (const chunk of req) body += chunk
  return body
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const body = await readBody(req)
    requests.push({ url: req.url ?? '', method: req.method ?? '', body, contentType: req.headers['content-type'] })
    switch (req.url) {
      case '/api/app.info':
        return json(res, 200, appInfo)
      case '/api/settings.update':
        return json(res, 200, { ...settings, ...JSON.parse(body) })
      case '/api/models.inspect':
        return json(res, 422, {
          code: 'bad_input',
          message: 'config.json is missing in /models/empty.',
          details: 'expected /models/empty/config.json',
        })
      case '/api/fs.list':
        return json(res, 403, { code: 'permission', message: 'The app may not read /root.' })
      case '/api/system.info':
        res.writeHead(502, { 'content-type': 'text/html' })
        return res.end('<html>Bad gateway</html>')
      case '/api/fs.places':
        res.writeHead(401, { 'content-type': 'text/plain' })
        return res.end('Unauthorized')
      case '/api/settings.get':
        res.writeHead(200, { 'content-type': 'application/json' })
        return res.end('{"dataDir": ') // truncated
      default:
        return json(res, 404, { code: 'unknown_method', message: `No method ${req.url}` })
    }
  })
  wss = new WebSocketServer({ server, path: '/events' })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  for (const c of wss.clients) c.terminate()
  wss.close()
  server.closeAllConnections()
  await new Promise<void>((r) => server.close(() => r()))
})

const clients: RendererApiClient[] = []
afterEach(() => {
  for (const c of clients.splice(0)) c.close()
})

function client(extra: Parameters<typeof createWebClient>[0] = {}) {
  const c = createWebClient({
    baseUrl: origin,
    openSocket: (url) => new WebSocket(url) as unknown as SocketLike,
    backoff: { initialMs: 20, maxMs: 100 },
    ...extra,
  })
  clients.push(c)
  return c
}

/** Wait until `check` holds, polling; fails the test with `what` after a while. */
async function until(check: () => boolean, what: string, timeoutMs = 3000) {
  const start = Date.now()
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

function broadcast(message: unknown) {
  const text = typeof message === 'string' ? message : JSON.stringify(message)
  for (const c of wss.clients) c.send(text)
}

describe('web client calls', () => {
  it('POSTs JSON to /api/<method> and returns the result', async () => {
    const api = client()
    expect(api.mode).toBe('web')
    expect(await api.call('app.info', {})).toEqual(appInfo)
    const updated = await api.call('settings.update', { theme: 'dark' })
    expect(updated.theme).toBe('dark')
    const last = requests.at(-1)!
    expect(last).toMatchObject({ url: '/api/settings.update', method: 'POST', contentType: 'application/json' })
    expect(JSON.parse(last.body)).toEqual({ theme: 'dark' })
  })

  it('turns an ApiErrorBody into an ApiError with code, message and details', async () => {
    const api = client()
    const err = await api.call('models.inspect', { path: '/models/empty' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err).toMatchObject({
      code: 'bad_input',
      message: 'config.json is missing in /models/empty.',
      details: 'expected /models/empty/config.json',
    })
    await expect(api.call('fs.list', { path: '/root' })).rejects.toMatchObject({ code: 'permission', details: undefined })
  })

  it('maps a non-API failure by its status and keeps the body as details', async () => {
    const api = client()
    await expect(api.call('system.info', {})).rejects.toMatchObject({
      code: 'internal',
      message: 'The server answered HTTP 502.',
      details: '<html>Bad gateway</html>',
    })
    await expect(api.call('fs.places', {})).rejects.toMatchObject({
      code: 'unauthorized',
      message: expect.stringMatching(/access token/),
    })
  })

  it('refuses an unreadable success body instead of returning garbage', async () => {
    await expect(client().call('settings.get', {})).rejects.toMatchObject({ code: 'internal', message: expect.stringMatching(/unreadable/) })
  })

  it('says the server cannot be reached when the connection is refused', async () => {
    const dead = createServer()
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r))
    const port = (dead.address() as AddressInfo).port
    await new Promise<void>((r) => dead.close(() => r()))
    const api = client({ baseUrl: `http://127.0.0.1:${port}` })
    await expect(api.call('app.info', {})).rejects.toMatchObject({
      code: 'internal',
      message: 'Cannot reach the LongCtx server. Is it still running?',
    })
  })
})

describe('web client events', () => {
  it('opens the channel with the first listener and dispatches by event name', async () => {
    const api = client()
    const states: ConnectionInfo['state'][] = []
    api.onConnectionChange((i) => states.push(i.state))
    expect(api.connection.state).toBe('connecting')
    const gpus: unknown[] = []
    const changed: Settings[] = []
    api.on('system.gpus', (p) => gpus.push(p))
    api.on('settings.changed', (p) => changed.push(p))
    await until(() => api.connection.state === 'open' && wss.clients.size === 1, 'the socket to open')
    expect(states).toEqual(['open'])

    broadcast({ event: 'system.gpus', payload: [gpu] })
    broadcast({ event: 'settings.changed', payload: settings })
    await until(() => gpus.length === 1 && changed.length === 1, 'both events')
    expect(gpus[0]).toEqual([gpu])
    expect(changed[0]).toEqual(settings)
  })

  it('stops delivering to an unsubscribed listener, and survives junk frames and throwing listeners', async () => {
    const api = client()
    const kept: unknown[] = []
    const dropped: unknown[] = []
    api.on('system.gpus', () => {
      throw new Error('listener bug')
    })
    const off = api.on('system.gpus', (p) => dropped.push(p))
    api.on('system.gpus', (p) => kept.push(p))
    await until(() => api.connection.state === 'open', 'the socket to open')
    off()
    const originalError = console.error
    console.error = () => {} // the throwing listener is logged; keep the test output clean
    try {
      broadcast('not json')
      broadcast({ no: 'event' })
      broadcast({ event: 'unknown.event', payload: 1 })
      broadcast({ event: 'system.gpus', payload: [] })
      await until(() => kept.length === 1, 'the good frame')
    } finally {
      console.error = originalError
    }
    expect(kept).toEqual([[]])
    expect(dropped).toEqual([])
  })

  it('reconnects with backoff after the server drops the socket, and events flow again', async () => {
    const api = client()
    const states: ConnectionInfo[] = []
    api.onConnectionChange((i) => states.push(i))
    const got: unknown[] = []
    api.on('system.gpus', (p) => got.push(p))
    await until(() => api.connection.state === 'open', 'first open')

    for (const c of wss.clients) c.terminate()
    await until(() => states.some((s) => s.state === 'reconnecting'), 'reconnecting state')
    const reconnecting = states.find((s) => s.state === 'reconnecting')!
    expect(reconnecting.attempts).toBe(1)
    expect(reconnecting.nextAttemptAtMs).toBeGreaterThan(0)

    await until(() => api.connection.state === 'open', 'reopen')
    expect(api.connection.attempts).toBe(0)
    await until(() => wss.clients.size === 1, 'server to see the new socket')
    broadcast({ event: 'system.gpus', payload: [gpu] })
    await until(() => got.length === 1, 'event after reconnect')
  })

  it('keeps retrying, with growing delays, while the server is away', async () => {
    const attempts: number[] = []
    let opened = 0
    const api = client({
      eventsUrl: 'ws://127.0.0.1:1/events', // nothing listens on port 1
      openSocket: (url) => {
        opened++
        return new WebSocket(url) as unknown as SocketLike
      },
    })
    api.onConnectionChange((i) => i.state === 'reconnecting' && attempts.push(i.attempts))
    api.on('system.gpus', () => {})
    await until(() => attempts.length >= 3, 'three failed attempts')
    expect(attempts.slice(0, 3)).toEqual([1, 2, 3])
    expect(opened).toBeGreaterThanOrEqual(3)
    api.close()
    const count = opened
    await new Promise((r) => setTimeout(r, 150))
    expect(opened).toBe(count) // close() stops the retry loop
    expect(api.connection.state).toBe('closed')
  })

  it('computes capped exponential delays with bounded jitter', () => {
    const b = { initialMs: 500, maxMs: 15_000 }
    expect(reconnectDelayMs(0, b, () => 0)).toBe(500)
    expect(reconnectDelayMs(3, b, () => 0)).toBe(4000)
    expect(reconnectDelayMs(10, b, () => 0)).toBe(15_000)
    expect(reconnectDelayMs(0, b, () => 1)).toBe(600)
  })
})
