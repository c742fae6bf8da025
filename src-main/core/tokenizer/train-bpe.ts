// A small byte-level BPE trainer that writes GPT-2-format files (vocab.json, merges.txt and an HF
// tokenizer.json). It exists for the fixture and demo models, whose vocabulary must come from the
// project's own public-domain corpus; it is not meant for 50k-token vocabularies on gigabytes.
//
// Training: the corpus is cut into GPT-2 pre-tokens, each distinct pre-token is a sequence of byte
// symbols weighted by its count, and the most frequent adjacent pair is merged until the merge
// budget is spent or no pair occurs `minFrequency` times. Ties go to the pair with the smaller ids,
// so a corpus always gives the same files.

import { BYTE_TO_CHAR } from './byte-level.ts'
import { pretokenEnd } from './pretokenize.ts'

export interface TrainBpeOptions {
  /** Merges to learn at most; the vocabulary is 256 bytes + merges + special tokens. */
  merges: number
  /** A pair seen fewer times than this is never merged (default 2). */
  minFrequency?: number
  /** Appended after the merged tokens, in order (default ["<|endoftext|>"]). */
  specialTokens?: string[]
}

export interface TrainedBpe {
  /** Tokens by id, spelled in the byte-level alphabet; special tokens last. */
  tokens: string[]
  merges: Array<[string, string]>
  specialTokens: Array<{ id: number; content: string }>
}

/** Ids 0..255 follow GPT-2's order: printable bytes first, then the shifted ones. */
function baseAlphabet(): { tokens: string[]; idOfByte: Int32Array } {
  const order = BYTE_TO_CHAR.map((ch, b) => ({ b, code: ch.charCodeAt(0) })).sort((x, y) => x.code - y.code)
  const idOfByte = new Int32Array(256)
  order.forEach(({ b }, id) => {
    idOfByte[b] = id
  })
  return { tokens: order.map(({ b }) => BYTE_TO_CHAR[b]!), idOfByte }
}

const PAIR_SHIFT = 2 ** 21
const pairKey = (a: number, b: number): number => a * PAIR_SHIFT + b

export function trainByteLevelBpe(documents: Iterable<string>, options: TrainBpeOptions): TrainedBpe {
  const minFrequency = options.minFrequency ?? 2
  const specials = options.specialTokens ?? ['<|endoftext|>']
  if (!Number.isInteger(options.merges) || options.merges < 0) throw new RangeError('merges must be a non-negative integer')
  if (256 + options.merges + specials.length > PAIR_SHIFT) throw new RangeError('vocabulary too large for this trainer')

  // Count distinct pre-tokens.
  const wordCounts = new Map<string, number>()
  for (const doc of documents) {
    for (let i = 0; i < doc.length; ) {
      const j = pretokenEnd(doc, i, doc.length)
      const w = doc.slice(i, j)
      wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1)
      i = j
    }
  }

  const { tokens, idOfByte } = baseAlphabet()
  const idOfToken = new Map(tokens.map((t, id) => [t, id]))
  // Two merges can spell the same token ("a"+"bc", "ab"+"c"); like HF's trainer, they share its id.
  const intern = (token: string): number => {
    let id = idOfToken.get(token)
    if (id === undefined) {
      id = tokens.length
      tokens.push(token)
      idOfToken.set(token, id)
    }
    return id
  }
  const encoder = new TextEncoder()
  const words: number[][] = []
  const counts: number[] = []
  for (const [w, c] of wordCounts) {
    words.push(Array.from(encoder.encode(w), (b) => idOfByte[b]!))
    counts.push(c)
  }

  const pairCount = new Map<number, number>()
  const pairWords = new Map<number, Set<number>>()
  const addPairs = (wi: number, sign: 1 | -1): void => {
    const syms = words[wi]!
    const c = counts[wi]! * sign
    for (let k = 0; k + 1 < syms.length; k++) {
      const key = pairKey(syms[k]!, syms[k + 1]!)
      pairCount.set(key, (pairCount.get(key) ?? 0) + c)
      if (sign > 0) {
        let set = pairWords.get(key)
        if (!set) pairWords.set(key, (set = new Set()))
        set.add(wi)
      }
    }
  }
  words.forEach((_, wi) => addPairs(wi, 1))

  const merges: Array<[string, string]> = []
  while (merges.length < options.merges) {
    let bestKey = -1
    let bestCount = 0
    for (const [key, c] of pairCount) {
      if (c > bestCount || (c === bestCount && c > 0 && key < bestKey)) {
        bestCount = c
        bestKey = key
      }
    }
    if (bestKey < 0 || bestCount < minFrequency) break
    const a = Math.floor(bestKey / PAIR_SHIFT)
    const b = bestKey - a * PAIR_SHIFT
    const merged = intern(tokens[a]! + tokens[b]!)
    merges.push([tokens[a]!, tokens[b]!])

    for (const wi of pairWords.get(bestKey) ?? []) {
      const syms = words[wi]!
      addPairs(wi, -1)
      const out: number[] = []
      for (let k = 0; k < syms.length; k++) {
        if (k + 1 < syms.length && syms[k] === a && syms[k + 1] === b) {
          out.push(merged)
          k++
        } else {
          out.push(syms[k]!)
        }
      }
      words[wi] = out
      addPairs(wi, 1)
    }
    pairCount.delete(bestKey)
    pairWords.delete(bestKey)
    // Drop pairs whose count fell to zero so the scan above stays short.
    for (const [key, c] of pairCount) if (c === 0) pairCount.delete(key)
  }

  const specialTokens = specials.map((content) => ({ id: intern(content), content }))
  return { tokens, merges, specialTokens }
}

/** The three files of a trained tokenizer, as text, in the formats HF reads. */
export function bpeToFiles(bpe: TrainedBpe): { 'vocab.json': string; 'merges.txt': string; 'tokenizer.json': string } {
  const vocab: Record<string, number> = {}
  bpe.tokens.forEach((t, id) => {
    vocab[t] = id
  })
  const mergeLines = bpe.merges.map(([a, b]) => `${a} ${b}`)
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: bpe.specialTokens.map(({ id, content }) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: true,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: mergeLines,
    },
  }
  return {
    'vocab.json': JSON.stringify(vocab) + '\n',
    'merges.txt': ['#version: 0.2', ...mergeLines].join('\n') + '\n',
    'tokenizer.json': JSON.stringify(tokenizerJson, null, 2) + '\n',
  }
}
