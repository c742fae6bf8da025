// The app's side of a GGUF host child (gguf-host.ts): forks it, sends requests, streams tokens
// back, and turns the child's death (llama.cpp abort, out of memory, kill -9) into an error the
// chat can show, never into the app's own death.
import { fork, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { HostGenerateResult, HostLoaded, HostReply, HostRequest, HostSampling } from './gguf-protocol.ts'

// Distributive Omit: strips `id` from each member of the request union.
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never
type RequestBody = WithoutId<HostRequest>

export interface GgufHostOptions {
  path: string
  gpu: 'auto' | false
  threads?: number
  contextSize?: number
  allowBeyondPositions?: boolean // test hook, see gguf-protocol.ts
  startTimeoutMs?: number
}

export interface GgufCrash {
  code: number | null
  signal: NodeJS.Signals | null
  message: string // for the user: what happened, with llama.cpp's last words when it said any
}

export class GgufHostCrashed extends Error {
  readonly crash: GgufCrash
  constructor(crash: GgufCrash) {
    super(crash.message)
    this.name = 'GgufHostCrashed'
    this.crash = crash
  }
}

// How to start the child: the bundled gguf-host.js beside the main bundle, or from source the
// TypeScript file with tsx's loader (tests, the CLI run through tsx).
function hostEntry(): { script: string; execArgv: string[] } {
  const here = import.meta.url
  if (here.endsWith('.ts')) {
    const require = createRequire(here)
    const loader = pathToFileURL(join(dirname(require.resolve('tsx/package.json')), 'dist/loader.mjs')).href
    return { script: fileURLToPath(new URL('./gguf-host.ts', here)), execArgv: ['--import', loader] }
  }
  const dir = dirname(fileURLToPath(here))
  for (const candidate of [join(dir, 'gguf-host.js'), join(dir, '..', 'gguf-host.js')]) {
    if (existsSync(candidate)) return { script: candidate, execArgv: [] }
  }
  throw new Error(`the GGUF host (gguf-host.js) is missing next to ${dir}; rebuild the app`)
}

const STDERR_TAIL_BYTES = 8192

// The line of llama.cpp's output that says why it stopped, if it said anything.
function lastWords(stderr: string): string | null {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean)
  const telling = lines.filter((l) => /GGML_ASSERT|assert|abort|error|fatal|out of memory/i.test(l))
  return telling.at(-1) ?? null
}

export class GgufHost {
  #child: ChildProcess
  #nextId = 1
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; onToken?: (ids: number[], text: string) => void }>()
  #stderr = ''
  #exited = false
  #disposing = false
  #crash: GgufCrash | null = null
  #crashListeners = new Set<(c: GgufCrash) => void>()
  loaded!: HostLoaded

  private constructor(child: ChildProcess) {
    this.#child = child
    child.stderr?.on('data', (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString()).slice(-STDERR_TAIL_BYTES)
    })
    child.stdout?.on('data', () => undefined) // drained: a full pipe would stall the child
    child.on('message', (m) => this.#onMessage(m as HostReply))
    child.on('exit', (code, signal) => this.#onExit(code, signal))
    child.on('error', () => undefined) // surfaces as 'exit' too
  }

  static async start(opts: GgufHostOptions): Promise<GgufHost> {
    const entry = hostEntry()
    const child = fork(entry.script, [], {
      execArgv: entry.execArgv,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // Inside Electron, process.execPath is the Electron binary: this makes it a plain Node.
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    })
    const host = new GgufHost(child)
    await host.#waitReady(opts.startTimeoutMs ?? 60_000)
    try {
      host.loaded = (await host.request({
        op: 'load',
        path: opts.path,
        gpu: opts.gpu,
        ...(opts.threads ? { threads: opts.threads } : {}),
        ...(opts.contextSize ? { contextSize: opts.contextSize } : {}),
        ...(opts.allowBeyondPositions ? { allowBeyondPositions: true } : {}),
      })) as HostLoaded
    } catch (e) {
      await host.dispose()
      throw e
    }
    return host
  }

  get pid(): number | undefined {
    return this.#child.pid
  }
  get alive(): boolean {
    return !this.#exited
  }
  get crash(): GgufCrash | null {
    return this.#crash
  }

  onCrash(listener: (c: GgufCrash) => void): () => void {
    this.#crashListeners.add(listener)
    return () => this.#crashListeners.delete(listener)
  }

  #waitReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#child.kill('SIGKILL')
        reject(new Error(`the GGUF host did not start within ${timeoutMs / 1000} s`))
      }, timeoutMs)
      const onMessage = (m: unknown) => {
        if ((m as HostReply).op === 'ready') done()
      }
      const onExit = () => {
        clearTimeout(timer)
        this.#child.off('message', onMessage)
        reject(new GgufHostCrashed(this.#crash ?? this.#describeExit(null, null)))
      }
      const done = () => {
        clearTimeout(timer)
        this.#child.off('message', onMessage)
        this.#child.off('exit', onExit)
        resolve()
      }
      this.#child.on('message', onMessage)
      this.#child.once('exit', onExit)
    })
  }

  #onMessage(m: HostReply): void {
    if (m.op === 'ready') return
    const p = this.#pending.get(m.id)
    if (!p) return
    if (m.op === 'token') p.onToken?.(m.tokens, m.text)
    else {
      this.#pending.delete(m.id)
      if (m.op === 'result') p.resolve(m.value)
      else p.reject(new Error(m.message))
    }
  }

  #describeExit(code: number | null, signal: NodeJS.Signals | null): GgufCrash {
    const how = signal ? `was stopped by ${signal}` : `exited with code ${code}`
    const said = lastWords(this.#stderr)
    const cause =
      signal === 'SIGABRT' || /GGML_ASSERT/.test(said ?? '')
        ? ' llama.cpp aborted (a runtime assertion failed).'
        : signal === 'SIGKILL'
          ? ' It was killed (out of memory, or by hand).'
          : ''
    return {
      code,
      signal,
      message: `The GGUF runtime (node-llama-cpp, in its own process) ${how}.${cause}${said ? ` Its last message: ${said}` : ''} The app is fine; restart the model to continue.`,
    }
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.#exited = true
    if (this.#disposing) {
      for (const p of this.#pending.values()) p.reject(new Error('the GGUF model was unloaded'))
      this.#pending.clear()
      return
    }
    const crash = this.#describeExit(code, signal)
    this.#crash = crash
    for (const p of this.#pending.values()) p.reject(new GgufHostCrashed(crash))
    this.#pending.clear()
    for (const l of this.#crashListeners) l(crash)
  }

  request(body: RequestBody, onToken?: (ids: number[], text: string) => void): Promise<unknown> {
    if (this.#exited) return Promise.reject(new GgufHostCrashed(this.#crash ?? this.#describeExit(null, null)))
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onToken })
      this.#child.send({ ...body, id } as HostRequest, (err) => {
        if (err && this.#pending.delete(id)) reject(err)
      })
    })
  }

  tokenize(text: string): Promise<number[]> {
    return this.request({ op: 'tokenize', text }) as Promise<number[]>
  }

  // Starts a generation; `stop()` ends it early. The promise resolves when the child is done.
  generate(
    prompt: number[],
    sampling: HostSampling,
    maxTokens: number,
    onToken: (ids: number[], text: string) => void,
    stopAtEos = true,
  ): { done: Promise<HostGenerateResult>; stop: () => void } {
    const id = this.#nextId // the id request() is about to take
    const done = this.request({ op: 'generate', prompt, sampling, maxTokens, stopAtEos }, onToken) as Promise<HostGenerateResult>
    return {
      done,
      stop: () => {
        if (!this.#exited) void this.request({ op: 'stop', target: id }).catch(() => undefined)
      },
    }
  }

  logits(tokens: number[]): Promise<number[][]> {
    return this.request({ op: 'logits', tokens }) as Promise<number[][]>
  }

  // For tests of crash handling: what a kill -9 from outside looks like.
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.#child.kill(signal)
  }

  // Frees the model: asks the child to unload and exit, and kills it if it does not.
  async dispose(): Promise<void> {
    if (this.#exited) return
    this.#disposing = true
    const exited = new Promise<void>((r) => this.#child.once('exit', () => r()))
    this.request({ op: 'unload' }).catch(() => undefined)
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
}
