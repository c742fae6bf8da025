// A pool of worker threads that tokenize text with the model's own tokenizer, one per core
// (os.availableParallelism()), so a multi-GB import uses the whole machine and never blocks the
// main thread (which carries the UI's API and the WebSocket).
//
// Workers must be able to load TypeScript when the app runs from source (tests, tsx, the CLI):
// then the worker gets tsx's loader through --import. The bundled app (electron-vite) builds
// the worker as its own entry, dataset-tokenize-worker.js, next to the main bundle.
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { BatchRequest, WorkerInit, WorkerReply } from './tokenize-worker.ts'

export interface BatchResult {
  ids: Int32Array
  lengths: Uint32Array
  chars: number
  encodeMs: number
}

interface Pending {
  resolve: (r: BatchResult) => void
  reject: (e: Error) => void
}

interface Slot {
  worker: Worker
  inFlight: Map<number, Pending>
}

export class TokenizerWorkerError extends Error {
  override name = 'TokenizerWorkerError'
}

/** How to start a worker: a script file, or (from source) a bootstrap that registers tsx first. */
function workerEntry(): { script: string | URL; eval: boolean } {
  const here = import.meta.url
  if (here.endsWith('.ts')) {
    // Node 20 ignores --import in a worker's execArgv, so the worker registers tsx's loader
    // itself before importing the TypeScript entry.
    const require = createRequire(here)
    // The ESM build of tsx's API (require.resolve would give its CommonJS twin).
    const tsxApi = pathToFileURL(join(dirname(require.resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href
    const entry = new URL('./tokenize-worker.ts', here).href
    const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}) })`
    return { script: code, eval: true }
  }
  // Bundled: the worker entry sits beside the main bundle, or one folder up from a chunk.
  const dir = dirname(fileURLToPath(here))
  for (const candidate of [join(dir, 'dataset-tokenize-worker.js'), join(dir, '..', 'dataset-tokenize-worker.js')]) {
    if (existsSync(candidate)) return { script: pathToFileURL(candidate), eval: false }
  }
  throw new TokenizerWorkerError(`the tokenizer worker (dataset-tokenize-worker.js) is missing next to ${dir}; rebuild the app`)
}

export class TokenizePool {
  private readonly slots: Slot[] = []
  private nextSeq = 0
  private rr = 0
  private closed = false

  private constructor() {}

  /** Starts `size` workers (default: one per core) and waits until each has loaded the tokenizer. */
  static async start(modelDir: string, size = availableParallelism()): Promise<TokenizePool> {
    const pool = new TokenizePool()
    const entry = workerEntry()
    const init: WorkerInit = { modelDir }
    const ready: Promise<void>[] = []
    for (let i = 0; i < Math.max(1, size); i++) {
      const worker = new Worker(entry.script, { workerData: init, eval: entry.eval })
      const slot: Slot = { worker, inFlight: new Map() }
      pool.slots.push(slot)
      ready.push(
        new Promise<void>((resolve, reject) => {
          const fail = (e: Error) => {
            reject(e)
            pool.failSlot(slot, e)
          }
          worker.on('message', (msg: WorkerReply) => {
            if (msg.type === 'ready') resolve()
            else if (msg.type === 'result') {
              const p = slot.inFlight.get(msg.seq)
              slot.inFlight.delete(msg.seq)
              p?.resolve({ ids: msg.ids, lengths: msg.lengths, chars: msg.chars, encodeMs: msg.encodeMs })
            } else {
              const e = new TokenizerWorkerError(msg.message)
              if (msg.seq === null) fail(e)
              else {
                const p = slot.inFlight.get(msg.seq)
                slot.inFlight.delete(msg.seq)
                p?.reject(e)
              }
            }
          })
          worker.on('error', (e) => fail(e instanceof Error ? e : new Error(String(e))))
          worker.on('exit', (code) => {
            if (!pool.closed) fail(new TokenizerWorkerError(`a tokenizer worker stopped unexpectedly (exit code ${code})`))
          })
        }),
      )
    }
    try {
      await Promise.all(ready)
    } catch (err) {
      await pool.close()
      throw err
    }
    return pool
  }

  get size(): number {
    return this.slots.length
  }

  /** Tokenizes the texts on the least busy worker. */
  encode(texts: string[]): Promise<BatchResult> {
    if (this.closed) return Promise.reject(new TokenizerWorkerError('the tokenize pool is closed'))
    let best = this.slots[this.rr++ % this.slots.length]!
    for (const s of this.slots) if (s.inFlight.size < best.inFlight.size) best = s
    const seq = this.nextSeq++
    return new Promise<BatchResult>((resolve, reject) => {
      best.inFlight.set(seq, { resolve, reject })
      best.worker.postMessage({ seq, texts } satisfies BatchRequest)
    })
  }

  private failSlot(slot: Slot, e: Error): void {
    for (const p of slot.inFlight.values()) p.reject(e)
    slot.inFlight.clear()
  }

  /** Stops every worker; pending batches are rejected. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const closing = new TokenizerWorkerError('the tokenize pool was closed')
    for (const s of this.slots) this.failSlot(s, closing)
    await Promise.all(this.slots.map((s) => s.worker.terminate()))
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}
