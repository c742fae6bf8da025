// The encoder/decoder object that loadTokenizer() returns. Encoding is: cut out added tokens, then
// for each remaining piece GPT-2 pre-tokenization, then byte-level BPE per pre-token through a
// cache (natural text repeats its words, so most pre-tokens never reach the merge loop).

import { AddedTokenSplitter, type AddedToken } from './added-tokens.ts'
import { BpeModel } from './bpe.ts'
import { byteLevelToBytes } from './byte-level.ts'
import { pretokenEnd } from './pretokenize.ts'

export type TokenizerKind = 'tokenizer.json' | 'vocab.json+merges.txt'

export interface DecodeOptions {
  /** Leave out special added tokens (like <|endoftext|>); default false, as in transformers. */
  skipSpecialTokens?: boolean
}

/** Incremental decoding for streamed generation. */
export interface StreamDecoder {
  /**
   * Adds one token and returns the text that became complete with it: bytes of a character split
   * across tokens are held back until the character is whole, so the concatenation of everything
   * push() and flush() return equals decode() of all the ids.
   */
  push(id: number): string
  /** Ends the stream: returns what was held back (an unfinished character becomes U+FFFD). */
  flush(): string
}

export interface TokenizerParts {
  kind: TokenizerKind
  hash: string
  model: BpeModel
  vocab: Map<string, number>
  addedTokens: AddedToken[]
  eosTokenId: number | null
  addPrefixSpace: boolean
  useRegex: boolean
}

/** Pre-tokens longer than this (UTF-16 units) are not cached: they rarely repeat. */
const CACHE_MAX_WORD = 256
/** The cache is dropped when it reaches this many entries, which bounds its memory. */
const CACHE_MAX_ENTRIES = 200_000

export class Tokenizer {
  /** Which files it was loaded from. */
  readonly kind: TokenizerKind
  /** Stable content hash of the tokenizer files (hex SHA-256), for caching tokenized data. */
  readonly hash: string
  /** One past the largest token id (vocabulary and added tokens together). */
  readonly vocabSize: number
  /** End-of-text id, or null when the tokenizer names none. */
  readonly eosTokenId: number | null

  private readonly model: BpeModel
  private readonly vocab: Map<string, number>
  private readonly splitter: AddedTokenSplitter
  private readonly addedByContent: Map<string, AddedToken>
  private readonly addPrefixSpace: boolean
  private readonly useRegex: boolean
  /** UTF-8 bytes each id decodes to (undefined: unknown id, skipped like HF does) */
  private readonly idBytes: Array<Uint8Array | undefined>
  private readonly idToken: Array<string | undefined>
  private readonly idIsSpecial: Uint8Array

  // A single-token result is stored as the bare id: most words are one token, and a number costs
  // the garbage collector nothing.
  private cache = new Map<string, number | Int32Array>()
  private utf8 = new Uint8Array(1024)
  private readonly encoder = new TextEncoder()

  constructor(parts: TokenizerParts) {
    this.kind = parts.kind
    this.hash = parts.hash
    this.model = parts.model
    this.vocab = parts.vocab
    this.eosTokenId = parts.eosTokenId
    this.addPrefixSpace = parts.addPrefixSpace
    this.useRegex = parts.useRegex
    this.splitter = new AddedTokenSplitter(parts.addedTokens)
    this.addedByContent = new Map(parts.addedTokens.map((t) => [t.content, t]))

    let maxId = -1
    for (const id of parts.vocab.values()) if (id > maxId) maxId = id
    for (const t of parts.addedTokens) if (t.id > maxId) maxId = t.id
    this.vocabSize = maxId + 1

    this.idBytes = new Array(this.vocabSize)
    this.idToken = new Array(this.vocabSize)
    this.idIsSpecial = new Uint8Array(this.vocabSize)
    for (const [token, id] of parts.vocab) this.idToken[id] = token
    // As in HF, an added token's own spelling wins over a vocabulary entry with the same id.
    for (const t of parts.addedTokens) {
      this.idToken[t.id] = t.content
      if (t.special) this.idIsSpecial[t.id] = 1
    }
    this.idToken.forEach((token, id) => {
      // HF's byte-level decoder maps a token through the byte alphabet when every character is in
      // it and takes the token's own UTF-8 otherwise.
      if (token !== undefined) this.idBytes[id] = byteLevelToBytes(token) ?? this.encoder.encode(token)
    })
  }

  /** Token ids of `text` (no BOS/EOS are added: like HF encode with add_special_tokens=False). */
  encode(text: string): Int32Array {
    const out = new IdBuffer(Math.max(16, text.length >> 2))
    if (this.splitter.isEmpty) {
      if (text.length > 0) this.encodeOrdinary(text, 0, text.length, out)
    } else {
      this.splitter.split(text, (id, start, end) => {
        if (id >= 0) out.push(id)
        else this.encodeOrdinary(text, start, end, out)
      })
    }
    return out.take()
  }

  private encodeOrdinary(text: string, start: number, end: number, out: IdBuffer): void {
    if (this.addPrefixSpace && text.charCodeAt(start) !== 0x20) {
      text = ' ' + text.slice(start, end)
      start = 0
      end = text.length
    }
    if (!this.useRegex) {
      this.encodePiece(text.slice(start, end), out)
      return
    }
    for (let i = start; i < end; ) {
      const j = pretokenEnd(text, i, end)
      this.encodePiece(text.slice(i, j), out)
      i = j
    }
  }

  private encodePiece(piece: string, out: IdBuffer): void {
    let ids = this.cache.get(piece)
    if (ids === undefined) {
      if (this.utf8.length < piece.length * 3) this.utf8 = new Uint8Array(piece.length * 3)
      const { written } = this.encoder.encodeInto(piece, this.utf8)
      const merged = this.model.encodeBytes(this.utf8, written)
      ids = merged.length === 1 ? merged[0]! : merged
      if (piece.length <= CACHE_MAX_WORD) {
        if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache = new Map()
        this.cache.set(piece, ids)
      }
    }
    if (typeof ids === 'number') out.push(ids)
    else out.append(ids)
  }

  /**
   * Text of the ids (invalid UTF-8 becomes U+FFFD; ids outside the vocabulary are skipped, as in HF).
   * A leading U+FEFF is text like any other here (TextDecoder would drop it as a byte order mark).
   */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const skip = options.skipSpecialTokens === true
    let total = 0
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!
      if (skip && this.idIsSpecial[id] === 1) continue
      total += this.idBytes[id]?.length ?? 0
    }
    const bytes = new Uint8Array(total)
    let at = 0
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!
      if (skip && this.idIsSpecial[id] === 1) continue
      const b = this.idBytes[id]
      if (b !== undefined) {
        bytes.set(b, at)
        at += b.length
      }
    }
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes)
  }

  /** A decoder for one stream of ids (see StreamDecoder). */
  createDecoder(options: DecodeOptions = {}): StreamDecoder {
    const skip = options.skipSpecialTokens === true
    const utf8 = new TextDecoder('utf-8', { ignoreBOM: true })
    return {
      push: (id: number): string => {
        if (skip && this.idIsSpecial[id] === 1) return ''
        const b = this.idBytes[id]
        return b === undefined ? '' : utf8.decode(b, { stream: true })
      },
      flush: (): string => utf8.decode(),
    }
  }

  /** The id of a token spelled as in vocab.json (or an added token's content). */
  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.vocab.get(token)
  }

  /** The spelling of an id as in vocab.json, or the added token's content. */
  idToToken(id: number): string | undefined {
    return this.idToken[id]
  }

  /** Whether the id is a special added token (such as <|endoftext|>). */
  isSpecial(id: number): boolean {
    return this.idIsSpecial[id] === 1
  }
}

/** A growable Int32Array. */
class IdBuffer {
  private data: Int32Array
  private length = 0

  constructor(capacity: number) {
    this.data = new Int32Array(capacity)
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.data.length) return
    let capacity = this.data.length * 2
    while (capacity < this.length + extra) capacity *= 2
    const grown = new Int32Array(capacity)
    grown.set(this.data.subarray(0, this.length))
    this.data = grown
  }

  push(id: number): void {
    this.reserve(1)
    this.data[this.length++] = id
  }

  append(ids: Int32Array): void {
    this.reserve(ids.length)
    if (ids.length < 8) {
      for (let i = 0; i < ids.length; i++) this.data[this.length + i] = ids[i]!
    } else {
      this.data.set(ids, this.length)
    }
    this.length += ids.length
  }

  take(): Int32Array {
    return this.data.slice(0, this.length)
  }
}
