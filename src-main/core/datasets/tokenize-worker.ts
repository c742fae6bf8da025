// Worker-thread entry of the tokenize pool: loads the model's tokenizer once, then encodes batches
// of text pieces. Ids come back in one transferred Int32Array per batch (no copy, no per-piece
// message), with each piece's length.
import { parentPort, workerData } from 'node:worker_threads'
import { loadTokenizer } from '../tokenizer/index.ts'

export interface WorkerInit {
  modelDir: string
}
export interface BatchRequest {
  seq: number
  texts: string[]
}
export type WorkerReply =
  | { type: 'ready'; hash: string }
  | { type: 'result'; seq: number; ids: Int32Array; lengths: Uint32Array; chars: number; encodeMs: number }
  | { type: 'error'; seq: number | null; message: string; name: string }

const port = parentPort!
const init = workerData as WorkerInit

try {
  const tokenizer = await loadTokenizer(init.modelDir)
  port.on('message', (req: BatchRequest) => {
    try {
      const t0 = performance.now()
      const parts: Int32Array[] = []
      const lengths = new Uint32Array(req.texts.length)
      let total = 0
      let chars = 0
      for (let i = 0; i < req.texts.length; i++) {
        const text = req.texts[i]!
        const ids = text.length ? tokenizer.encode(text) : new Int32Array(0)
        parts.push(ids)
        lengths[i] = ids.length
        total += ids.length
        chars += text.length
      }
      const ids = new Int32Array(total)
      let at = 0
      for (const p of parts) {
        ids.set(p, at)
        at += p.length
      }
      const reply: WorkerReply = { type: 'result', seq: req.seq, ids, lengths, chars, encodeMs: performance.now() - t0 }
      port.postMessage(reply, [ids.buffer, lengths.buffer])
    } catch (err) {
      const e = err as Error
      port.postMessage({ type: 'error', seq: req.seq, message: e.message, name: e.name } satisfies WorkerReply)
    }
  })
  port.postMessage({ type: 'ready', hash: tokenizer.hash } satisfies WorkerReply)
} catch (err) {
  const e = err as Error
  port.postMessage({ type: 'error', seq: null, message: e.message, name: e.name } satisfies WorkerReply)
}
