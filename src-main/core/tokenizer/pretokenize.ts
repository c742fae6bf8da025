// The GPT-2 pre-tokenizer as a hand-written scanner. It gives exactly the pieces that the pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// gives under Oniguruma (the engine HF tokenizers compiles it with), at several times the speed of
// a JS RegExp. Two details matter for exactness:
// - `\s` is Oniguruma's Unicode whitespace (tab..CR, U+0085, Zs, U+2028/2029), which differs from
//   JS `\s` (JS lacks U+0085 and adds U+FEFF), so the set is spelled out below.
// - `\s+(?!\S)` backtracks by one character, so a whitespace run followed by a word leaves its last
//   character to become the word's leading space (or a piece of its own if it is not U+0020).

export const GPT2_SPLIT_PATTERN =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

const LETTER = 1
const NUMBER = 2
const SPACE = 3
const OTHER = 4

/** Unicode White_Space, which is what Oniguruma's `\s` and Rust's char::is_whitespace test. */
export function isWhiteSpace(cp: number): boolean {
  if (cp <= 0x20) return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d)
  if (cp < 0x85) return false
  return (
    cp === 0x85 ||
    cp === 0xa0 ||
    cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x202f ||
    cp === 0x205f ||
    cp === 0x3000
  )
}

const LETTER_RE = /^\p{L}$/u
const NUMBER_RE = /^\p{N}$/u

function classifyCodePoint(cp: number): number {
  if (isWhiteSpace(cp)) return SPACE
  // Lone surrogates cannot come from decoded UTF-8; they encode as U+FFFD, an OTHER character.
  if (cp >= 0xd800 && cp <= 0xdfff) return OTHER
  const ch = String.fromCodePoint(cp)
  if (LETTER_RE.test(ch)) return LETTER
  if (NUMBER_RE.test(ch)) return NUMBER
  return OTHER
}

// The property tests are slow, so classes are memoised: a flat table for the BMP (0 = not yet
// known), a map for the rest.
const bmpClass = new Uint8Array(0x10000)
const astralClass = new Map<number, number>()
for (let cp = 0; cp < 0x80; cp++) bmpClass[cp] = classifyCodePoint(cp)

function classOfBmp(unit: number): number {
  let cls = bmpClass[unit]!
  if (cls === 0) {
    cls = classifyCodePoint(unit)
    bmpClass[unit] = cls
  }
  return cls
}

function classOfAstral(cp: number): number {
  let cls = astralClass.get(cp)
  if (cls === undefined) {
    cls = classifyCodePoint(cp)
    astralClass.set(cp, cls)
  }
  return cls
}

/**
 * Class of the character at `i` (one or two UTF-16 units) packed with its width:
 * `(class << 1) | (width - 1)`.
 */
function classAt(text: string, i: number, end: number): number {
  const unit = text.charCodeAt(i)
  if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < end) {
    const low = text.charCodeAt(i + 1)
    if (low >= 0xdc00 && low <= 0xdfff) {
      return (classOfAstral(((unit - 0xd800) << 10) + (low - 0xdc00) + 0x10000) << 1) | 1
    }
  }
  return classOfBmp(unit) << 1
}

/**
 * End (exclusive, in UTF-16 units) of the pre-token that starts at `start`; the text is only read
 * up to `end`. Requires start < end.
 */
export function pretokenEnd(text: string, start: number, end: number): number {
  const first = text.charCodeAt(start)

  if (first === 0x27 && start + 1 < end) {
    const c1 = text.charCodeAt(start + 1)
    // 's 't 'm 'd
    if (c1 === 0x73 || c1 === 0x74 || c1 === 0x6d || c1 === 0x64) return start + 2
    if (start + 2 < end) {
      const c2 = text.charCodeAt(start + 2)
      // 're 've 'll
      if ((c2 === 0x65 && (c1 === 0x72 || c1 === 0x76)) || (c1 === 0x6c && c2 === 0x6c)) return start + 3
    }
  }

  let j = start
  let packed = first < 0x80 ? bmpClass[first]! << 1 : classAt(text, start, end)
  if (first === 0x20 && start + 1 < end) {
    const next = classAt(text, start + 1, end)
    if (next >> 1 !== SPACE) {
      j = start + 1
      packed = next
    }
  }

  const cls = packed >> 1
  if (cls !== SPACE) {
    // One run of letters, digits or other symbols (after the optional leading space).
    j += (packed & 1) + 1
    while (j < end) {
      const unit = text.charCodeAt(j)
      const p = unit < 0x80 ? bmpClass[unit]! << 1 : classAt(text, j, end)
      if (p >> 1 !== cls) break
      j += (p & 1) + 1
    }
    return j
  }

  // Whitespace: every White_Space character is a single UTF-16 unit.
  let k = start + 1
  while (k < end) {
    const unit = text.charCodeAt(k)
    if (!(unit < 0x80 ? bmpClass[unit] === SPACE : isWhiteSpace(unit))) break
    k++
  }
  if (k === end) return k
  return k - start >= 2 ? k - 1 : k
}

/** The GPT-2 pre-tokens of `text`, in order; joined they give `text` back. */
export function splitGpt2(text: string): string[] {
  const pieces: string[] = []
  for (let i = 0; i < text.length; ) {
    const j = pretokenEnd(text, i, text.length)
    pieces.push(text.slice(i, j))
    i = j
  }
  return pieces
}
