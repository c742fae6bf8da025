// Web mode transport: the same API over HTTP (POST /api/<method>) and a WebSocket (/events),
// plus the built renderer as static files. Bound to 127.0.0.1 only. Every request, page and
// asset included, needs the per-launch token: the first page load may carry it in the URL
// (?token=…), which is traded for an HttpOnly cookie and removed from the address bar. Host and
// Origin are checked so other web pages (or DNS-rebinding tricks) cannot reach the API.
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { extname, join, normalize, resolve, sep } from 'node:path'
import { WebSocketServer, type WebSocket } from 'ws'
import { ApiError, type ApiErrorCode } from '../api/contract.ts'
import { toApiError, type Core } from '../core/core.ts'

export interface WebServerOptions {
  core: Core
  staticDir: string
  port?: number // 0 = any free port
  token?: string
}

export interface WebServer {
  url: string // with the token, for the user to open
  origin: string
  token: string
  port: number
  close(): Promise<void>
}

const COOKIE = 'longctx_token'
const MAX_BODY_BYTES = 1 << 20
const HOST = '127.0.0.1'

const STATUS: Record<ApiErrorCode, number> = {
  invalid_argument: 400,
  unknown_method: 404,
  not_found: 404,
  permission: 403,
  bad_input: 422,
  engine: 500,
  busy: 409,
  unauthorized: 401,
  internal: 500,
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
}

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

export async function startWebServer(opts: WebServerOptions): Promise<WebServer> {
  const token = opts.token ?? randomBytes(24).toString('base64url')
  const staticRoot = resolve(opts.staticDir)
  let port = 0
  const allowedHosts = () => [`${HOST}:${port}`, `localhost:${port}`]
  const allowedOrigins = () => allowedHosts().map((h) => `http://${h}`)

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => sendError(res, toApiError(err)))
  })
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 })

  async function handle(req: IncomingMessage, res: ServerResponse) {
    res.setHeader('X-Content-Type-Options', 'nosniff')
    res.setHeader('Referrer-Policy', 'no-referrer')
    if (!allowedHosts().includes(req.headers.host ?? '')) {
      return sendError(res, new ApiError('unauthorized', 'Unexpected Host header.'), 403)
    }
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`)

    // Token in the URL: trade it for a cookie and drop it from the address bar.
    const urlToken = url.searchParams.get('token')
    if (urlToken !== null && req.method === 'GET') {
      if (!sameSecret(urlToken, token)) return sendError(res, new ApiError('unauthorized', 'Wrong access token.'), 403)
      url.searchParams.delete('token')
      res.writeHead(303, {
        'Set-Cookie': `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`,
        Location: url.pathname + (url.search || ''),
        'Cache-Control': 'no-store',
      })
      return res.end()
    }

    const auth = authorize(req)
    if (auth !== 'ok') {
      const message =
        auth === 'missing'
          ? 'LongCtx Studio needs its access token: open the address printed in the terminal where the app started (it ends in ?token=…).'
          : 'Wrong access token. Open the address printed in the terminal where the app started.'
      const status = auth === 'missing' ? 401 : 403
      if (url.pathname.startsWith('/api/')) return sendError(res, new ApiError('unauthorized', message), status)
      // A person at a browser gets a page, not JSON.
      res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': CSP })
      return res.end(`<!doctype html><meta charset="utf-8"><title>LongCtx Studio</title><p>${message}</p>`)
    }

    if (url.pathname.startsWith('/api/')) {
      if (req.method !== 'POST') return sendError(res, new ApiError('invalid_argument', 'Use POST for API calls.'), 405)
      const origin = req.headers.origin
      if (origin !== undefined && !allowedOrigins().includes(origin)) {
        return sendError(res, new ApiError('unauthorized', `Requests from ${origin} are not allowed.`), 403)
      }
      const name = decodeURIComponent(url.pathname.slice('/api/'.length))
      const body = await readJsonBody(req)
      const result = await opts.core.call(name, body)
      return sendJson(res, 200, result ?? null)
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendError(res, new ApiError('invalid_argument', 'Method not allowed.'), 405)
    }
    return serveStatic(url.pathname, res)
  }

  function authorize(req: IncomingMessage): 'ok' | 'missing' | 'wrong' {
    const header = req.headers.authorization
    const bearer = header?.startsWith('Bearer ') ? header.slice(7) : undefined
    const cookie = parseCookies(req.headers.cookie)[COOKIE]
    const given = bearer ?? cookie
    if (given === undefined) return 'missing'
    return sameSecret(given, token) ? 'ok' : 'wrong'
  }

  async function serveStatic(pathname: string, res: ServerResponse) {
    const rel = pathname === '/' ? 'index.html' : decodeURIComponent(pathname).replace(/^\/+/, '')
    const file = resolve(join(staticRoot, normalize(rel)))
    if (file !== staticRoot && !file.startsWith(staticRoot + sep)) {
      return sendError(res, new ApiError('not_found', 'Not found.'), 404)
    }
    const info = await stat(file).catch(() => null)
    if (!info?.isFile()) return sendError(res, new ApiError('not_found', `Not found: ${pathname}`), 404)
    const type = MIME[extname(file)] ?? 'application/octet-stream'
    const headers: Record<string, string | number> = { 'Content-Type': type, 'Content-Length': info.size }
    if (type.startsWith('text/html')) {
      headers['Content-Security-Policy'] = CSP
      headers['Cache-Control'] = 'no-store'
    }
    res.writeHead(200, headers)
    createReadStream(file).pipe(res)
  }

  server.on('upgrade', (req, socket, head) => {
    const refuse = (status: number, text: string) => {
      socket.write(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n\r\n`)
      socket.destroy()
    }
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname !== '/events') return refuse(404, 'Not Found')
    if (!allowedHosts().includes(req.headers.host ?? '')) return refuse(403, 'Forbidden')
    const origin = req.headers.origin
    if (origin !== undefined && !allowedOrigins().includes(origin)) return refuse(403, 'Forbidden')
    const auth = authorize(req)
    if (auth !== 'ok') return refuse(auth === 'missing' ? 401 : 403, auth === 'missing' ? 'Unauthorized' : 'Forbidden')
    wss.handleUpgrade(req, socket, head, (ws) => attachClient(ws))
  })

  function attachClient(ws: WebSocket) {
    const off = opts.core.onAny((event, payload) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ event, payload }))
    })
    ws.on('close', off)
    ws.on('error', off)
    // Clients only listen; anything they send is ignored.
    ws.on('message', () => undefined)
  }

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, HOST, () => resolveListen())
  })
  port = (server.address() as AddressInfo).port
  const origin = `http://${HOST}:${port}`

  return {
    url: `${origin}/?token=${token}`,
    origin,
    token,
    port,
    async close() {
      for (const client of wss.clients) client.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) throw new ApiError('invalid_argument', 'Request body too large.')
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return {}
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new ApiError('invalid_argument', 'The request body is not valid JSON.')
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' })
  res.end(text)
}

function sendError(res: ServerResponse, err: ApiError, status = STATUS[err.code]) {
  if (res.headersSent) return res.destroy()
  sendJson(res, status, err.toBody())
}

function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of header?.split(';') ?? []) {
    const eq = part.indexOf('=')
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim()
  }
  return out
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}
