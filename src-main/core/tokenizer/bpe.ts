// Byte-level BPE merging with the semantics of HF tokenizers' `Word::merge_all`: at every step the
// adjacent pair with the lowest merge rank is merged, the leftmost one on ties, and pairs created by
// a merge compete right away. (The classic "merge every occurrence of the best pair, then rescan"
// loop gives the same answer only for merge lists in training order; this one is exact for any.)
//
// Two implementations of that rule: a rescanning one for short words, which are nearly all words
// and where it is fastest, and a heap over a linked list for long ones, where rescanning would be
// quadratic (a 1 MB run of letters is one pre-token). Tests check that they agree.

import { TokenizerFileError } from './errors.ts'
import { BYTE_TO_CHAR, bytesToByteLevel } from './byte-level.ts'

export interface BpeSpec {
  /** token (byte-level spelling) -> id */
  vocab: Map<string, number>
  /** merges in rank order (rank = index); a later duplicate of a pair overrides the earlier one, as in HF */
  merges: ReadonlyArray<readonly [string, string]>
  unkToken: string | null
  fuseUnk: boolean
  /** Look the whole pre-token up in the vocabulary before merging (tokenizer.json `ignore_merges`). */
  ignoreMerges: boolean
}

/** Words up to this many bytes use the rescanning merge loop. */
export const SHORT_WORD_BYTES = 48

// Heap keys pack (rank, position) into one double: rank * 2^32 + pos keeps both exact for
// up to 2^21 merges and 2^32 bytes per word.
const POS_RANGE = 4294967296
const MAX_MERGES = 2 ** 21

export class BpeModel {
  /** id of each single byte's token, -1 when the vocabulary lacks it */
  readonly byteIds: Int32Array
  private readonly unkId: number
  private readonly fuseUnk: boolean
  private readonly ignoreMerges: boolean
  private readonly vocab: Map<string, number>

  // Open-addressing hash table (a, b) -> (rank, merged id); keyA = -1 marks an empty slot.
  private readonly mask: number
  private readonly keyA: Int32Array
  private readonly keyB: Int32Array
  private readonly rankOf: Int32Array
  private readonly mergedId: Int32Array

  // Scratch space reused by every call; grown on demand.
  private syms = new Int32Array(256)
  private ranks = new Int32Array(256)
  private next = new Int32Array(0)
  private prev = new Int32Array(0)
  private heap = new Float64Array(0)

  /** @param sourceFile named in errors about the vocabulary or merges */
  constructor(spec: BpeSpec, sourceFile: string) {
    this.vocab = spec.vocab
    this.fuseUnk = spec.fuseUnk
    this.ignoreMerges = spec.ignoreMerges
    if (spec.unkToken !== null) {
      const id = spec.vocab.get(spec.unkToken)
      if (id === undefined) {
        throw new TokenizerFileError(sourceFile, `unk_token ${JSON.stringify(spec.unkToken)} is not in the vocabulary`)
      }
      this.unkId = id
    } else {
      this.unkId = -1
    }

    this.byteIds = new Int32Array(256)
    for (let b = 0; b < 256; b++) this.byteIds[b] = spec.vocab.get(BYTE_TO_CHAR[b]!) ?? -1

    if (spec.merges.length > MAX_MERGES) {
      throw new TokenizerFileError(sourceFile, `${spec.merges.length} merges is more than the ${MAX_MERGES} supported`)
    }
    let capacity = 16
    while (capacity < spec.merges.length * 2) capacity *= 2
    this.mask = capacity - 1
    this.keyA = new Int32Array(capacity).fill(-1)
    this.keyB = new Int32Array(capacity)
    this.rankOf = new Int32Array(capacity)
    this.mergedId = new Int32Array(capacity)

    spec.merges.forEach(([left, right], rank) => {
      const where = `merge ${rank + 1} (${JSON.stringify(left)} ${JSON.stringify(right)})`
      const a = spec.vocab.get(left)
      if (a === undefined) throw new TokenizerFileError(sourceFile, `${where}: ${JSON.stringify(left)} is not in the vocabulary`)
      const b = spec.vocab.get(right)
      if (b === undefined) throw new TokenizerFileError(sourceFile, `${where}: ${JSON.stringify(right)} is not in the vocabulary`)
      const merged = spec.vocab.get(left + right)
      if (merged === undefined) {
        throw new TokenizerFileError(sourceFile, `${where}: the merged token ${JSON.stringify(left + right)} is not in the vocabulary`)
      }
      this.insert(a, b, rank, merged)
    })
  }

  private slot(a: number, b: number): number {
    let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77)
    h ^= h >>> 15
    return h & this.mask
  }

  private insert(a: number, b: number, rank: number, merged: number): void {
    let s = this.slot(a, b)
    while (this.keyA[s] !== -1 && !(this.keyA[s] === a && this.keyB[s] === b)) s = (s + 1) & this.mask
    this.keyA[s] = a
    this.keyB[s] = b
    this.rankOf[s] = rank
    this.mergedId[s] = merged
  }

  /** Table slot of the merge for (a, b), or -1. */
  private find(a: number, b: number): number {
    let s = this.slot(a, b)
    for (;;) {
      const k = this.keyA[s]!
      if (k === -1) return -1
      if (k === a && this.keyB[s] === b) return s
      s = (s + 1) & this.mask
    }
  }

  /** Rank of the merge (a, b), or -1 when there is none. */
  mergeRank(a: number, b: number): number {
    const s = this.find(a, b)
    return s < 0 ? -1 : this.rankOf[s]!
  }

  /**
   * Token ids of one pre-token given as UTF-8 bytes (bytes[0..length)). `strategy` picks the merge
   * loop; only tests pass anything but 'auto'.
   */
  encodeBytes(bytes: Uint8Array, length: number, strategy: 'auto' | 'short' | 'long' = 'auto'): Int32Array {
    if (this.ignoreMerges) {
      const whole = this.vocab.get(bytesToByteLevel(bytes.subarray(0, length)))
      if (whole !== undefined) return Int32Array.of(whole)
    }
    const n = this.initialSymbols(bytes, length)
    if (strategy === 'short' || (strategy === 'auto' && n <= SHORT_WORD_BYTES)) return this.mergeShort(n)
    return this.mergeLong(n)
  }

  /** Puts the per-byte symbols in `syms` and returns how many there are. */
  private initialSymbols(bytes: Uint8Array, length: number): number {
    if (this.syms.length < length) this.syms = new Int32Array(Math.max(length, this.syms.length * 2))
    const syms = this.syms
    let n = 0
    let lastWasUnk = false
    for (let i = 0; i < length; i++) {
      const id = this.byteIds[bytes[i]!]!
      if (id >= 0) {
        syms[n++] = id
        lastWasUnk = false
      } else if (this.unkId >= 0) {
        // Without an unk token HF drops bytes the vocabulary lacks; with one it emits it, fused
        // with a preceding unknown when fuse_unk is set.
        if (!(this.fuseUnk && lastWasUnk)) syms[n++] = this.unkId
        lastWasUnk = true
      }
    }
    return n
  }

  /** Rescanning merge loop: O(n^2) in the word length, fastest for short words. */
  private mergeShort(n: number): Int32Array {
    const syms = this.syms
    if (this.ranks.length < n) this.ranks = new Int32Array(Math.max(n, this.ranks.length * 2))
    const ranks = this.ranks
    // ranks[i] = rank of the pair (syms[i], syms[i+1]), or a value above every rank.
    const NONE = 0x7fffffff
    for (let i = 0; i + 1 < n; i++) {
      const r = this.mergeRank(syms[i]!, syms[i + 1]!)
      ranks[i] = r < 0 ? NONE : r
    }
    while (n > 1) {
      let best = 0
      let bestRank = ranks[0]!
      for (let i = 1; i + 1 < n; i++) {
        if (ranks[i]! < bestRank) {
          bestRank = ranks[i]!
          best = i
        }
      }
      if (bestRank === NONE) break
      syms[best] = this.mergedId[this.find(syms[best]!, syms[best + 1]!)]!
      syms.copyWithin(best + 1, best + 2, n)
      ranks.copyWithin(best, best + 1, n - 1)
      n--
      if (best > 0) {
        const r = this.mergeRank(syms[best - 1]!, syms[best]!)
        ranks[best - 1] = r < 0 ? NONE : r
      }
      if (best + 1 < n) {
        const r = this.mergeRank(syms[best]!, syms[best + 1]!)
        ranks[best] = r < 0 ? NONE : r
      }
    }
    return this.syms.slice(0, n)
  }

  /** Heap-driven merging over a doubly linked list: O(n log n), for long words. */
  private mergeLong(n: number): Int32Array {
    const syms = this.syms
    if (this.next.length < n) {
      this.next = new Int32Array(n)
      this.prev = new Int32Array(n)
    }
    const next = this.next
    const prev = this.prev
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1
      prev[i] = i - 1
    }
    let heapSize = 0
    const push = (key: number): void => {
      if (heapSize === this.heap.length) {
        const grown = new Float64Array(Math.max(64, this.heap.length * 2))
        grown.set(this.heap)
        this.heap = grown
      }
      const heap = this.heap
      let i = heapSize++
      while (i > 0) {
        const parent = (i - 1) >> 1
        if (heap[parent]! <= key) break
        heap[i] = heap[parent]!
        i = parent
      }
      heap[i] = key
    }
    const pop = (): number => {
      const heap = this.heap
      const top = heap[0]!
      const last = heap[--heapSize]!
      let i = 0
      for (;;) {
        let child = 2 * i + 1
        if (child >= heapSize) break
        if (child + 1 < heapSize && heap[child + 1]! < heap[child]!) child++
        if (heap[child]! >= last) break
        heap[i] = heap[child]!
        i = child
      }
      heap[i] = last
      return top
    }

    for (let i = 0; i + 1 < n; i++) {
      const r = this.mergeRank(syms[i]!, syms[i + 1]!)
      if (r >= 0) push(r * POS_RANGE + i)
    }
    // A removed symbol is marked by syms = -1.
    while (heapSize > 0) {
      const key = pop()
      const rank = Math.floor(key / POS_RANGE)
      const pos = key - rank * POS_RANGE
      if (syms[pos] === -1) continue
      const right = next[pos]!
      if (right === -1) continue
      // Entries go stale when a neighbour merged since they were pushed: check that this pair
      // still is the one with this rank.
      const slot = this.find(syms[pos]!, syms[right]!)
      if (slot < 0 || this.rankOf[slot] !== rank) continue
      syms[pos] = this.mergedId[slot]!
      syms[right] = -1
      const after = next[right]!
      next[pos] = after
      if (after !== -1) prev[after] = pos
      const before = prev[pos]!
      if (before !== -1) {
        const r = this.mergeRank(syms[before]!, syms[pos]!)
        if (r >= 0) push(r * POS_RANGE + before)
      }
      if (after !== -1) {
        const r = this.mergeRank(syms[pos]!, syms[after]!)
        if (r >= 0) push(r * POS_RANGE + pos)
      }
    }
    let count = 0
    for (let i = 0; i !== -1 && i < n; i = next[i]!) count++
    const out = new Int32Array(count)
    let k = 0
    for (let i = 0; i !== -1 && i < n; i = next[i]!) out[k++] = syms[i]!
    return out
  }
}
