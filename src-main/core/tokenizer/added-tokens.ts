// Added (and special) tokens such as <|endoftext|> are cut out of the text before pre-tokenization,
// with the rules of HF tokenizers' AddedVocabulary: leftmost-longest matches, non-overlapping,
// tokens with `normalized: false` matched first and the `normalized: true` ones inside what is left
// (the order matters when tokens overlap), `single_word` matches dropped when touching a letter or
// digit, `lstrip`/`rstrip` swallowing the whitespace next to the match.

import { isWhiteSpace } from './pretokenize.ts'

export interface AddedToken {
  id: number
  content: string
  special: boolean
  singleWord: boolean
  lstrip: boolean
  rstrip: boolean
  normalized: boolean
}

/** Receives the pieces of the text in order: an added token's id, or -1 for ordinary text. */
export type SegmentSink = (id: number, start: number, end: number) => void

const ALNUM_RE = /^[\p{Alphabetic}\p{N}]$/u

function codePointBefore(text: string, index: number): number {
  const low = text.charCodeAt(index - 1)
  if (low >= 0xdc00 && low <= 0xdfff && index >= 2) {
    const high = text.charCodeAt(index - 2)
    if (high >= 0xd800 && high <= 0xdbff) return ((high - 0xd800) << 10) + (low - 0xdc00) + 0x10000
  }
  return low
}

const isAlnum = (cp: number): boolean => ALNUM_RE.test(String.fromCodePoint(cp))

class MatchPass {
  private readonly pattern: RegExp
  private readonly byContent: Map<string, AddedToken>

  constructor(tokens: AddedToken[]) {
    this.byContent = new Map(tokens.map((t) => [t.content, t]))
    // Longest first, so that at one position the alternation takes the longest token.
    const contents = [...this.byContent.keys()].sort((a, b) => b.length - a.length)
    this.pattern = new RegExp(contents.map((c) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|'), 'gu')
  }

  /** Splits text[from, to) as HF splits that piece on its own (matches never cross its ends). */
  split(text: string, from: number, to: number, sink: SegmentSink): void {
    if (from !== 0 || to !== text.length) {
      this.splitWhole(text.slice(from, to), (id, start, end) => sink(id, start + from, end + from))
    } else {
      this.splitWhole(text, sink)
    }
  }

  private splitWhole(text: string, sink: SegmentSink): void {
    const re = this.pattern
    const end = text.length
    re.lastIndex = 0
    let offset = 0
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const token = this.byContent.get(m[0])!
      let start = m.index
      let stop = start + m[0].length
      if (token.singleWord) {
        const wordBefore = start > 0 && isAlnum(codePointBefore(text, start))
        const wordAfter = stop < end && isAlnum(text.codePointAt(stop)!)
        if (wordBefore || wordAfter) continue
      }
      if (token.lstrip) {
        while (start > offset && isWhiteSpace(text.charCodeAt(start - 1))) start--
      }
      if (token.rstrip) {
        while (stop < end && isWhiteSpace(text.charCodeAt(stop))) stop++
        // Whitespace swallowed here is not searched again.
        re.lastIndex = stop
      }
      if (offset < start) sink(-1, offset, start)
      sink(token.id, start, stop)
      offset = stop
    }
    if (offset < end) sink(-1, offset, end)
  }
}

/** Splits text around added tokens. */
export class AddedTokenSplitter {
  private readonly raw: MatchPass | null
  private readonly normalized: MatchPass | null

  constructor(tokens: readonly AddedToken[]) {
    const usable = tokens.filter((t) => t.content.length > 0)
    const raw = usable.filter((t) => !t.normalized)
    const normalized = usable.filter((t) => t.normalized)
    this.raw = raw.length > 0 ? new MatchPass(raw) : null
    this.normalized = normalized.length > 0 ? new MatchPass(normalized) : null
  }

  get isEmpty(): boolean {
    return this.raw === null && this.normalized === null
  }

  split(text: string, sink: SegmentSink): void {
    const second = this.normalized
    const inner: SegmentSink = second
      ? (id, start, end) => (id >= 0 ? sink(id, start, end) : second.split(text, start, end, sink))
      : sink
    if (this.raw) this.raw.split(text, 0, text.length, inner)
    else if (second) second.split(text, 0, text.length, sink)
    else if (text.length > 0) sink(-1, 0, text.length)
  }
}
