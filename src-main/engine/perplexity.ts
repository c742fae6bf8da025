// Perplexity over consecutive non-overlapping windows (the DESIGN's "perplexity per window"):
// a window of n tokens scores its n-1 next-token predictions inside the window (no context from
// the previous window); a last shorter window counts when it has at least 2 tokens; PPL =
// exp(mean NLL over all predictions). Full windows are batched into rows of one forward call.
import type { EngineModel } from './model.ts'

export interface WindowSpan {
  start: number
  length: number
}

// The windows of `tokens` tokens cut at `window`: all full ones, then the tail if it has >= 2.
export function cutWindows(tokens: number, window: number): WindowSpan[] {
  if (!Number.isInteger(window) || window < 2) throw new RangeError('window must be an integer >= 2')
  const out: WindowSpan[] = []
  let start = 0
  for (; start + window <= tokens; start += window) out.push({ start, length: window })
  if (tokens - start >= 2) out.push({ start, length: tokens - start })
  return out
}

export interface PerplexityResult {
  tokens: number
  windows: number
  predictions: number
  nll: number // mean NLL per prediction (nats)
  ppl: number
}

export interface PerplexityOptions {
  // Tokens per forward call (rows = floor(batchTokens / window), at least 1). Bounds memory:
  // the CPU forward holds B*T*V logits.
  batchTokens?: number
  onProgress?: (done: number, total: number) => void
}

export async function perplexityPerWindow(
  model: EngineModel,
  ids: ArrayLike<number>,
  window: number,
  opts: PerplexityOptions = {},
): Promise<PerplexityResult> {
  const spans = cutWindows(ids.length, window)
  const rowsPerCall = Math.max(1, Math.floor((opts.batchTokens ?? 4096) / window))
  let nllSum = 0 // float64 accumulation: long files sum millions of per-token values
  let predictions = 0
  let done = 0

  // Groups of equal-length spans go through one call each (the tail has its own length).
  for (let i = 0; i < spans.length; ) {
    const T = spans[i]!.length
    let B = 0
    while (i + B < spans.length && B < rowsPerCall && spans[i + B]!.length === T) B++
    const tokens = new Int32Array(B * T)
    const targets = new Int32Array(B * T)
    for (let b = 0; b < B; b++) {
      const { start } = spans[i + b]!
      for (let t = 0; t < T; t++) {
        tokens[b * T + t] = ids[start + t]!
        // The last position of a window has no next token inside it.
        targets[b * T + t] = t + 1 < T ? ids[start + t + 1]! : -1
      }
    }
    const r = await model.forward({ tokens, targets, B, T }, { nll: true })
    const nll = r.nll!
    for (let k = 0; k < nll.length; k++) if (targets[k]! >= 0) nllSum += nll[k]!
    predictions += B * (T - 1)
    i += B
    done += B
    opts.onProgress?.(done, spans.length)
  }
  const mean = predictions > 0 ? nllSum / predictions : NaN
  return { tokens: ids.length, windows: spans.length, predictions, nll: mean, ppl: Math.exp(mean) }
}
