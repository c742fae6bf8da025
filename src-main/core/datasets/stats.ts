// Dataset statistics and the train / held-out split. The statistics answer the one question the
// wizard must put in front of the user before a long run: can this data teach the target context
// at all? A model learns an 8k context only from texts that are 8k tokens long.
import { CONTEXT_MARKS, type ContextMark, type DatasetStats, type LengthBucket } from '../../api/datasets.ts'
import { Prng } from './prng.ts'
import { DatasetInputError } from './text-decoding.ts'

const BUCKETS: Array<[string, number, number | null]> = [
  ['<256', 0, 256],
  ['256-512', 256, 512],
  ['512-1k', 512, 1024],
  ['1k-2k', 1024, 2048],
  ['2k-4k', 2048, 4096],
  ['4k-8k', 4096, 8192],
  ['8k-16k', 8192, 16384],
  ['>=16k', 16384, null],
]

/**
 * What "enough to teach context T" means here: at least this many documents of length >= T and
 * this many distinct T-token windows in them. Below that, long examples repeat the same few texts
 * and the model memorizes them instead of learning to use the longer context.
 */
export const TEACH_MIN_DOCUMENTS = 32
export const TEACH_MIN_WINDOWS = 256

export interface SplitOptions {
  seed: number
  heldOutFraction: number
  minHeldOutDocuments: number
  maxHeldOutDocuments: number
  /** Documents the training side must keep. */
  minTrainDocuments: number
}

export const DEFAULT_SPLIT: SplitOptions = {
  seed: 1234,
  heldOutFraction: 0.02,
  minHeldOutDocuments: 1,
  maxHeldOutDocuments: 2000,
  minTrainDocuments: 1,
}

/** Number of held-out documents for a dataset of n documents. */
export function heldOutCount(n: number, o: SplitOptions): number {
  if (o.heldOutFraction === 0) return 0
  return Math.min(o.maxHeldOutDocuments, Math.max(o.minHeldOutDocuments, Math.round(n * o.heldOutFraction)))
}

/**
 * Seeded choice of held-out documents (ascending indices). Selection by document, never by
 * window, so no held-out text is ever seen in training.
 */
export function chooseHeldOut(n: number, o: SplitOptions): Uint32Array {
  const k = heldOutCount(n, o)
  if (n - k < o.minTrainDocuments || (o.heldOutFraction > 0 && k < o.minHeldOutDocuments)) {
    throw new DatasetInputError(
      `The dataset has ${n} document${n === 1 ? '' : 's'}, too few to set ${Math.max(k, o.minHeldOutDocuments)} aside for ` +
        `perplexity and keep ${o.minTrainDocuments} for training (at least ${o.minHeldOutDocuments + o.minTrainDocuments} needed). ` +
        'Add documents; a single long .txt can be split into documents with a separator line (CLI: --separator).',
    )
  }
  // Partial Fisher-Yates over indices: O(n) memory as a typed array, O(k) swaps.
  const rng = Prng.fromSeed(o.seed, 1)
  const idx = new Uint32Array(n)
  for (let i = 0; i < n; i++) idx[i] = i
  for (let i = 0; i < k; i++) {
    const j = i + rng.nextInt(n - i)
    const t = idx[i]!
    idx[i] = idx[j]!
    idx[j] = t
  }
  return idx.slice(0, k).sort()
}

function label(n: number): string {
  return n >= 1024 ? `${n / 1024}k` : String(n)
}

export function computeStats(lengths: Uint32Array, heldOut: Uint32Array): DatasetStats {
  const held = new Uint8Array(lengths.length)
  for (const i of heldOut) held[i] = 1
  const train: number[] = []
  let heldTokens = 0
  const windows = Object.fromEntries(CONTEXT_MARKS.map((m) => [String(m), 0])) as Record<ContextMark, number>
  for (let i = 0; i < lengths.length; i++) {
    const len = lengths[i]!
    if (held[i]) {
      heldTokens += len
      for (const m of CONTEXT_MARKS) windows[String(m) as ContextMark] += Math.floor(len / m)
    } else train.push(len)
  }
  const histogram: LengthBucket[] = BUCKETS.map(([l, min, max]) => ({ label: l, minTokens: min, maxTokens: max, documents: 0, tokens: 0 }))
  const atLeast = Object.fromEntries(CONTEXT_MARKS.map((m) => [String(m), { documents: 0, tokens: 0 }])) as DatasetStats['atLeast']
  let tokens = 0
  let longest = 0
  for (const len of train) {
    tokens += len
    if (len > longest) longest = len
    const b = histogram.find((h) => len >= h.minTokens && (h.maxTokens === null || len < h.maxTokens))!
    b.documents++
    b.tokens += len
    for (const m of CONTEXT_MARKS) {
      if (len >= m) {
        const a = atLeast[String(m) as ContextMark]
        a.documents++
        a.tokens += len
      }
    }
  }
  const sorted = Float64Array.from(train).sort()
  const median = sorted.length ? (sorted.length % 2 ? sorted[sorted.length >> 1]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2) : 0
  const stats: DatasetStats = {
    documents: train.length,
    tokens,
    total: { documents: lengths.length, tokens: tokens + heldTokens },
    heldOut: { documents: heldOut.length, tokens: heldTokens, windows },
    lengthHistogram: histogram,
    atLeast,
    longestDocumentTokens: longest,
    medianDocumentTokens: Math.round(median),
    meanDocumentTokens: train.length ? Math.round(tokens / train.length) : 0,
    warnings: [],
  }
  stats.warnings = [...contextWarnings(stats, 4096), ...contextWarnings(stats, 8192)]
  return stats
}

/**
 * Why this dataset cannot teach context `target` (empty when it can). The UI calls this with the
 * plan's target; the stored statistics carry the warnings for 4k and 8k.
 */
export function contextWarnings(stats: DatasetStats, target: number): string[] {
  const out: string[] = []
  const mark = String(target) as ContextMark
  let docs: number
  let tokens: number
  if (mark in stats.atLeast) ({ documents: docs, tokens } = stats.atLeast[mark])
  else {
    // Not a reported mark: use the next reported mark above as a lower bound.
    const above = CONTEXT_MARKS.find((m) => m >= target)
    ;({ documents: docs, tokens } = above ? stats.atLeast[String(above) as ContextMark] : { documents: 0, tokens: 0 })
  }
  const windows = Math.floor(tokens / target)
  if (docs < TEACH_MIN_DOCUMENTS || windows < TEACH_MIN_WINDOWS) {
    out.push(
      `Only ${docs.toLocaleString('en-US')} training document${docs === 1 ? ' is' : 's are'} at least ${label(target)} tokens long ` +
        `(${formatTokens(tokens)} tokens, about ${windows.toLocaleString('en-US')} distinct ${label(target)} windows): ` +
        `too little to teach a context of ${label(target)} tokens (want at least ${TEACH_MIN_DOCUMENTS} documents and ${TEACH_MIN_WINDOWS} windows). ` +
        'Long examples would repeat the same texts. Add long documents (books, long articles, reports); ' +
        'packing short documents teaches positions but not long-range use of context.',
    )
  }
  const heldWindows = stats.heldOut.windows[mark]
  if (heldWindows !== undefined && heldWindows < 4 && stats.heldOut.documents > 0) {
    out.push(
      `The held-out documents give only ${heldWindows} perplexity window${heldWindows === 1 ? '' : 's'} of ${label(target)} tokens, ` +
        `so perplexity at ${label(target)} will be noisy or missing.`,
    )
  }
  return out
}

function formatTokens(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`
  return String(n)
}
