// The training-example sampler for one stage of context T, and the held-out window iterator.
//
// Each example (one row of T tokens for the engine) is long with probability pLong, else short:
// - long, 'window' (default): T consecutive tokens of ONE training document at least T tokens
//   long, at a random offset. Drawn uniformly over all such windows in the dataset, so every
//   position of every long document is equally likely and long documents are not favoured or
//   starved by their count.
// - long, 'pack': documents (each followed by end-of-text) packed into T tokens, each piece its
//   own segment id; a document longer than the room left contributes a random window. The
//   engine must stop attention at segment starts. This teaches positions up to T from short
//   data, but not long-range use of context.
// - short, 'pad' (default): one window of at most the model's original context (base), from any
//   training document (token-weighted), at positions [0, S) of the row; the rest is padding with
//   targets -1. Causal attention means the padding cannot change the real tokens, so this is
//   exactly "a short example" for any engine; `validLength` lets the engine skip the padding.
// - short, 'pack': windows of at most base tokens packed to T with segment ids (cheaper per
//   token, needs segment-aware attention; positions run 0..T-1 across the row).
//
// targets[i] is the token that follows tokens[i] in the same document (the end-of-text id after a
// document's last token, when the tokenizer has one), or -1 where nothing is scored: padding,
// and the end-of-text token of a packed document.
//
// Determinism: all choices come from the sampler's own PRNG, drawn before any read; the state
// (PRNG words and counters) is a small JSON object, and a sampler created from a saved state
// continues with exactly the examples the original would have produced.
import { Prng, type PrngState } from './prng.ts'
import type { DatasetReader } from './store.ts'
import { DatasetInputError } from './text-decoding.ts'

export type ExampleKind = 'long' | 'short'

export interface SamplerOptions {
  /** T: the stage's context length (row length). */
  contextLength: number
  /** The model's original context (n_positions before extension); short examples are at most this. */
  baseContext: number
  pLong?: number
  seed?: number
  longMode?: 'window' | 'pack'
  shortMode?: 'pad' | 'pack'
  /** Id put in padding positions (never scored); default end-of-text, else 0. */
  padTokenId?: number
}

export interface Example {
  tokens: Int32Array // (T)
  targets: Int32Array // (T), -1 = not scored
  /** (T) segment id per position when the row is packed; absent for single-document rows. */
  segments?: Int32Array
  kind: ExampleKind
  /** Positions [0, validLength) hold data; the rest is padding. */
  validLength: number
}

export interface Batch {
  rows: number
  contextLength: number
  tokens: Int32Array // (B,T)
  targets: Int32Array // (B,T)
  /** (B,T) when any row is packed; single-document rows are all segment 0. */
  segments?: Int32Array
  kinds: ExampleKind[]
  validLengths: Int32Array // (B)
}

export interface SamplerState {
  version: 1
  fingerprint: string
  rng: PrngState
  examples: { long: number; short: number }
  scoredTokens: { long: number; short: number }
}

export interface SamplerRatio {
  examples: { long: number; short: number }
  scoredTokens: { long: number; short: number }
  longFractionByExamples: number
  longFractionByTokens: number
}

/** Cumulative weights over a list of documents, for drawing a document with a weight. */
class WeightedDocs {
  readonly docs: Uint32Array
  private readonly cum: Float64Array // cum[i] = sum of weights of docs[0..i]
  constructor(docs: Uint32Array, weight: (doc: number) => number) {
    this.docs = docs
    this.cum = new Float64Array(docs.length)
    let s = 0
    for (let i = 0; i < docs.length; i++) {
      s += weight(docs[i]!)
      this.cum[i] = s
    }
  }
  get total(): number {
    return this.cum.length ? this.cum[this.cum.length - 1]! : 0
  }
  /** The document containing weight unit u (0 <= u < total) and u's offset inside it. */
  find(u: number): { doc: number; within: number } {
    let lo = 0
    let hi = this.cum.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.cum[mid]! > u) hi = mid
      else lo = mid + 1
    }
    return { doc: this.docs[lo]!, within: u - (lo ? this.cum[lo - 1]! : 0) }
  }
}

interface Piece {
  doc: number
  offset: number // in the document's stream (tokens, then end-of-text)
  length: number // tokens placed in the row
  at: number // row position
  segment: number
}

export class DatasetSampler {
  readonly contextLength: number
  readonly shortLength: number
  readonly pLong: number
  readonly longMode: 'window' | 'pack'
  readonly shortMode: 'pad' | 'pack'
  private readonly eos: number | null
  private readonly pad: number
  private readonly longDocs: WeightedDocs | null // window mode: weight = number of T-windows
  private readonly anyDocs: WeightedDocs // weight = tokens (+ end-of-text)
  private rng: Prng
  private counts = { long: 0, short: 0 }
  private scored = { long: 0, short: 0 }
  private readonly fingerprint: string
  private buf = new Int32Array(0)

  private constructor(
    private readonly reader: DatasetReader,
    options: SamplerOptions,
    state?: SamplerState,
  ) {
    const T = options.contextLength
    if (!Number.isInteger(T) || T < 2) throw new RangeError(`contextLength must be an integer >= 2, got ${T}`)
    if (!Number.isInteger(options.baseContext) || options.baseContext < 2) {
      throw new RangeError(`baseContext must be an integer >= 2, got ${options.baseContext}`)
    }
    const pLong = options.pLong ?? 0.6
    if (!(pLong >= 0 && pLong <= 1)) throw new RangeError(`pLong must be in [0, 1], got ${pLong}`)
    this.contextLength = T
    this.shortLength = Math.min(options.baseContext, T)
    this.pLong = pLong
    this.longMode = options.longMode ?? 'window'
    this.shortMode = options.shortMode ?? 'pad'
    this.eos = reader.eosTokenId
    this.pad = options.padTokenId ?? this.eos ?? 0
    const seed = options.seed ?? 0
    this.fingerprint = JSON.stringify({
      dataset: reader.manifest.id,
      T,
      base: this.shortLength,
      pLong,
      seed,
      long: this.longMode,
      short: this.shortMode,
      pad: this.pad,
    })

    const lengths = reader.lengths
    const train = reader.train
    if (train.length === 0) throw new DatasetInputError('The dataset has no training documents.')
    const e = this.eos === null ? 0 : 1
    this.anyDocs = new WeightedDocs(train, (d) => lengths[d]! + e)
    this.longDocs = null
    if (this.longMode === 'window' && pLong > 0) {
      const eligible = train.filter((d) => lengths[d]! >= T)
      if (eligible.length === 0) {
        let longest = 0
        for (const d of train) longest = Math.max(longest, lengths[d]!)
        throw new DatasetInputError(
          `No training document is at least ${T} tokens long (the longest has ${longest}), so there are no long examples ` +
            `for a ${T}-token stage. Add longer documents, or pack documents into long rows (long mode "pack").`,
        )
      }
      this.longDocs = new WeightedDocs(eligible, (d) => lengths[d]! - T + 1)
    }

    if (state) {
      if (state.version !== 1 || state.fingerprint !== this.fingerprint) {
        throw new DatasetInputError(
          'The saved sampler position belongs to another dataset or other sampler settings; it cannot be resumed with these.',
        )
      }
      this.rng = Prng.fromState(state.rng)
      this.counts = { ...state.examples }
      this.scored = { ...state.scoredTokens }
    } else {
      this.rng = Prng.fromSeed(seed, 2)
    }
  }

  static create(reader: DatasetReader, options: SamplerOptions, state?: SamplerState): DatasetSampler {
    return new DatasetSampler(reader, options, state)
  }

  /** A JSON-able copy of the position; create(reader, options, state) resumes from it. */
  state(): SamplerState {
    return {
      version: 1,
      fingerprint: this.fingerprint,
      rng: this.rng.state(),
      examples: { ...this.counts },
      scoredTokens: { ...this.scored },
    }
  }

  /** The long/short mix so far, by examples and by scored tokens. */
  ratio(): SamplerRatio {
    const ex = this.counts.long + this.counts.short
    const tok = this.scored.long + this.scored.short
    return {
      examples: { ...this.counts },
      scoredTokens: { ...this.scored },
      longFractionByExamples: ex ? this.counts.long / ex : 0,
      longFractionByTokens: tok ? this.scored.long / tok : 0,
    }
  }

  /** Draws the next example's layout (no I/O): which document windows go where. */
  private plan(): { kind: ExampleKind; pieces: Piece[]; packed: boolean } {
    const T = this.contextLength
    const kind: ExampleKind = this.rng.nextFloat() < this.pLong ? 'long' : 'short'
    if (kind === 'long' && this.longMode === 'window') {
      const { doc, within } = this.longDocs!.find(this.rng.nextInt(this.longDocs!.total))
      return { kind, packed: false, pieces: [{ doc, offset: within, length: T, at: 0, segment: 0 }] }
    }
    const cap = kind === 'long' ? T : this.shortLength
    if (kind === 'short' && this.shortMode === 'pad') {
      return { kind, packed: false, pieces: [this.drawWindow(cap, 0, 0)] }
    }
    const pieces: Piece[] = []
    let at = 0
    while (at < T) {
      const p = this.drawWindow(Math.min(cap, T - at), at, pieces.length)
      pieces.push(p)
      at += p.length
    }
    return { kind, packed: true, pieces }
  }

  /** A window of at most `cap` tokens from a token-weighted random document's stream. */
  private drawWindow(cap: number, at: number, segment: number): Piece {
    const { doc } = this.anyDocs.find(this.rng.nextInt(this.anyDocs.total))
    const streamLength = this.reader.lengths[doc]! + (this.eos === null ? 0 : 1)
    const length = Math.min(cap, streamLength)
    const offset = streamLength > length ? this.rng.nextInt(streamLength - length + 1) : 0
    return { doc, offset, length, at, segment }
  }

  /** The next example. */
  async next(): Promise<Example> {
    const T = this.contextLength
    const tokens = new Int32Array(T)
    const targets = new Int32Array(T)
    const { kind, pieces, packed } = this.plan()
    const segments = packed ? new Int32Array(T) : undefined
    const validLength = await this.fill(pieces, tokens, targets, segments, 0)
    let scored = 0
    for (let i = 0; i < T; i++) if (targets[i]! >= 0) scored++
    this.counts[kind]++
    this.scored[kind] += scored
    return { tokens, targets, ...(segments ? { segments } : {}), kind, validLength }
  }

  /** B examples as one (B,T) batch. */
  async nextBatch(rows: number): Promise<Batch> {
    const T = this.contextLength
    const tokens = new Int32Array(rows * T)
    const targets = new Int32Array(rows * T)
    const kinds: ExampleKind[] = []
    const validLengths = new Int32Array(rows)
    let segments: Int32Array | undefined
    for (let r = 0; r < rows; r++) {
      const ex = await this.next()
      tokens.set(ex.tokens, r * T)
      targets.set(ex.targets, r * T)
      if (ex.segments) {
        segments ??= new Int32Array(rows * T)
        segments.set(ex.segments, r * T)
      }
      kinds.push(ex.kind)
      validLengths[r] = ex.validLength
    }
    return { rows, contextLength: T, tokens, targets, ...(segments ? { segments } : {}), kinds, validLengths }
  }

  /** Reads the pieces into the row; returns the number of positions holding data. */
  private async fill(
    pieces: Piece[],
    tokens: Int32Array,
    targets: Int32Array,
    segments: Int32Array | undefined,
    base: number,
  ): Promise<number> {
    let end = 0
    for (const p of pieces) {
      // tokens = stream[offset, offset+length), targets = stream[offset+1, offset+length+1)
      const need = p.length + 1
      if (this.buf.length < need) this.buf = new Int32Array(need)
      const got = await this.readStream(p.doc, p.offset, need, this.buf)
      for (let i = 0; i < p.length; i++) {
        tokens[base + p.at + i] = this.buf[i]!
        targets[base + p.at + i] = i + 1 < got ? this.buf[i + 1]! : -1
      }
      if (segments) segments.fill(p.segment, base + p.at, base + p.at + p.length)
      end = Math.max(end, p.at + p.length)
    }
    for (let i = end; i < this.contextLength; i++) {
      tokens[base + i] = this.pad
      targets[base + i] = -1
    }
    return end
  }

  /**
   * Reads up to `count` tokens of document `doc`'s stream (its tokens, then end-of-text when the
   * tokenizer has one) from `offset`; returns how many exist.
   */
  private async readStream(doc: number, offset: number, count: number, out: Int32Array): Promise<number> {
    const len = this.reader.lengths[doc]!
    const fromDoc = Math.max(0, Math.min(count, len - offset))
    if (fromDoc > 0) await this.reader.readDocument(doc, offset, fromDoc, out)
    let got = fromDoc
    if (got < count && this.eos !== null && offset + got === len) out[got++] = this.eos
    return got
  }
}

export interface HeldOutWindow {
  tokens: Int32Array // (N)
  targets: Int32Array // (N): next token inside the window, -1 at the last position
  document: number
  offset: number
}

/** Number of non-overlapping N-token windows in the held-out documents. */
export function countHeldOutWindows(reader: DatasetReader, windowTokens: number): number {
  let n = 0
  for (const d of reader.heldOut) n += Math.floor(reader.lengths[d]! / windowTokens)
  return n
}

/**
 * Held-out documents cut into consecutive, non-overlapping windows of N tokens (a document's
 * remainder shorter than N is left out). Each window is scored on its own: N-1 predictions, none
 * looking outside the window, so perplexity at N measures a context of N tokens exactly.
 */
export async function* heldOutWindows(
  reader: DatasetReader,
  windowTokens: number,
  options: { maxWindows?: number } = {},
): AsyncGenerator<HeldOutWindow> {
  const N = windowTokens
  if (!Number.isInteger(N) || N < 2) throw new RangeError(`window must be an integer >= 2, got ${N}`)
  let emitted = 0
  const max = options.maxWindows ?? Infinity
  for (const doc of reader.heldOut) {
    const len = reader.lengths[doc]!
    for (let offset = 0; offset + N <= len; offset += N) {
      if (emitted >= max) return
      const tokens = new Int32Array(N)
      await reader.readDocument(doc, offset, N, tokens)
      const targets = new Int32Array(N)
      targets.set(tokens.subarray(1))
      targets[N - 1] = -1
      emitted++
      yield { tokens, targets, document: doc, offset }
    }
  }
}
