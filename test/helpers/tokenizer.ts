// Hand-made byte-level BPE tokenizers for the tokenizer tests: the 256 byte tokens (ids in byte
// order here, so id = byte value for the bases), then one token per merge in merge order, then
// any added tokens. Small enough that the right ids can be worked out by hand.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BYTE_TO_CHAR } from '../../src-main/core/tokenizer/byte-level.ts'

export interface HandTokenizer {
  vocab: Record<string, number>
  merges: Array<[string, string]>
  added: Array<{ id: number; content: string; special?: boolean; lstrip?: boolean; rstrip?: boolean; single_word?: boolean; normalized?: boolean }>
}

/** Byte-level spelling of plain text: "a b" -> "aĠb". */
export const bl = (text: string): string => Array.from(new TextEncoder().encode(text), (b) => BYTE_TO_CHAR[b]!).join('')

/** Builds vocab + merges; merges are given in plain text (" w" for "Ġw"). */
export function handTokenizer(merges: Array<[string, string]>, addedContents: string[] = [], spelled: 'text' | 'byte-level' = 'text'): HandTokenizer {
  const vocab: Record<string, number> = {}
  BYTE_TO_CHAR.forEach((ch, b) => {
    vocab[ch] = b
  })
  let next = 256
  const blMerges = spelled === 'text' ? merges.map(([a, b]): [string, string] => [bl(a), bl(b)]) : merges
  for (const [a, b] of blMerges) if (!(a + b in vocab)) vocab[a + b] = next++
  const added = addedContents.map((content) => ({ id: next++, content, special: true }))
  return { vocab, merges: blMerges, added }
}

export function tokenizerJsonOf(t: HandTokenizer, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: '1.0',
    added_tokens: t.added.map((a) => ({
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
      ...a,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false, vocab: t.vocab, merges: t.merges.map(([a, b]) => `${a} ${b}`) },
    ...over,
  }
}

/** Writes the folder: tokenizer.json and/or vocab.json + merges.txt. */
export async function writeTokenizerDir(
  dir: string,
  t: HandTokenizer,
  forms: { tokenizerJson?: boolean; vocabMerges?: boolean } = { tokenizerJson: true },
): Promise<string> {
  await mkdir(dir, { recursive: true })
  if (forms.tokenizerJson) await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJsonOf(t)))
  if (forms.vocabMerges) {
    const vocab = { ...t.vocab }
    for (const a of t.added) vocab[a.content] = a.id
    await writeFile(join(dir, 'vocab.json'), JSON.stringify(vocab))
    await writeFile(join(dir, 'merges.txt'), ['#version: 0.2', ...t.merges.map(([a, b]) => `${a} ${b}`)].join('\n') + '\n')
  }
  return dir
}

/** Text that has tripped tokenizers: scripts, emoji sequences, whitespace runs, long words, specials. */
export const TRICKY: string[] = [
  'Hello world',
  'Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю.',
  'Ёлка ЁЁЁ ёё',
  'emoji 👍 and ZWJ families 👨‍👩‍👧‍👦 🏳️‍🌈 flags 🇺🇦 skin 👋🏽',
  '🎉🎉🎉',
  '   leading, trailing   ',
  'a  b   c    d\u00a0\u00a0e\u3000f',
  'tabs\tand\t\ttabs\n\nnew\r\nlines\n',
  '\n\n\n',
  ' ',
  "I'm sure you'll see they've done what we'd said; it's John's. DON'T",
  '3.14159 1,000,000 2024-01-01 0x1F 1e-5 ١٢٣ ½',
  '12345678901234567890',
  'supercalifragilisticexpialidocious'.repeat(50),
  'x'.repeat(100_000),
  'CJK 日本語のテキスト 中文 한국어 Arabic مرحبا Devanagari नमस्ते',
  'combining e\u0301 a\u0308 and\u200bzero\u200cwidth\u200d',
  'nel\u0085there bom\ufeffthere',
  '\ufeffa leading U+FEFF is text too',
  'text<|endoftext|>more<|endoftext|><|endoftext|> end',
  '<|endoftext',
  '\u0000\u0001\u007f control',
  '😀💩𐍈',
]

/**
 * tokenizer.json files that exercise HF's less common rules (added-token flags and ids, rank order
 * against position, add_prefix_space); test/fixtures/tokenizer-golden.json holds HF's ids for them.
 */
export function edgeTokenizerJsons(): Record<string, Record<string, unknown>> {
  const hello = handTokenizer([['h', 'e'], ['l', 'l'], ['he', 'll'], ['hell', 'o'], [' ', 'w'], ['o', 'r'], [' w', 'or'], ['l', 'd']])
  const added = tokenizerJsonOf({
    ...hello,
    added: [
      // Ids as written are deliberately off (HF re-derives them) except where they agree.
      { id: 300, content: '<L>', lstrip: true, special: true, normalized: false },
      { id: 301, content: '<R>', rstrip: true, special: true, normalized: false },
      { id: 302, content: 'cat', single_word: true, special: false, normalized: true },
      { id: 303, content: '<a>', special: true, normalized: false },
      { id: 304, content: '<a><b>', special: true, normalized: false },
      { id: 305, content: 'xyz', normalized: true, special: false },
      { id: 306, content: 'yz', normalized: false, special: true },
      { id: 307, content: '<|endoftext|>', normalized: true, special: true },
    ],
  })
  const prefix = tokenizerJsonOf(handTokenizer([[' ', 'h']]))
  ;(prefix.pre_tokenizer as Record<string, unknown>).add_prefix_space = true
  const order = tokenizerJsonOf(handTokenizer([['ab', 'a'], ['a', 'b'], ['b', 'c'], ['y', 'a'], ['a', 'bc']]))
  // Merges across a space and the next character, which only apply when the pre-tokenizer keeps
  // them in one piece: it does for U+FEFF (not whitespace to Oniguruma) and not for U+0085 or
  // U+2028 (whitespace to Oniguruma), the reverse of what a JS \s would do for U+0085 and U+FEFF.
  const B = (...bytes: number[]): string => bytes.map((b) => BYTE_TO_CHAR[b]!).join('')
  const space = tokenizerJsonOf(
    handTokenizer(
      [
        [B(0xc2), B(0x85)],
        [B(0x20), B(0xc2, 0x85)],
        [B(0x20), B(0xef)],
        [B(0x20, 0xef), B(0xbb)],
        [B(0x20, 0xef, 0xbb), B(0xbf)],
        [B(0xe2), B(0x80)],
        [B(0xe2, 0x80), B(0xa8)],
        [B(0x20), B(0xe2, 0x80, 0xa8)],
        [B(0x20), B(0xc2)],
        [B(0x20, 0xc2), B(0xa0)],
      ],
      [],
      'byte-level',
    ),
  )
  return { 'edge-added': added, 'edge-prefix': prefix, 'edge-order': order, 'edge-space': space }
}

/** Strings aimed at the edge tokenizers and at whitespace that JS and Oniguruma disagree on. */
export const EDGE_TEXTS: string[] = [
  ' \u0085x', 'x \u0085y', 'x \ufeffy', 'x \u2028y', 'x \u00a0y', 'x  \u00a0y', 'x\u0085 y', '\u0085\u0085 x', ' \ufeff', 'a \ufeff b', '\u2028\u2028x', 'x \u00a0 y', '\u3000\u3000z', 'a\u000b\u000cb',
  '\u0085', 'x\u0085', ' \u0085', 'ab\u00a0cd', '\u1680\u1680q', '\u200b\u200b x', 'x\u180ey',
  'a  <L> b', 'a <R>  b', 'a cat!', 'concat', 'x<a><b><a>', 'xyz', 'axyzb', 'hello<|endoftext|>world', ' <L><R> ', '<L>',
  '  <L>', 'cat', 'cat cat', 'hello world', 'yabc', 'abab', 'h', ' h', 'hh h  h',
]

/** Deterministic random strings over characters that stress the pre-tokenizer. */
export function randomTexts(count: number, seed = 99): string[] {
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return (seed >>> 8) % n
  }
  const alphabet = ['a', 'Z', 'é', 'я', '1', '٣', '½', ' ', ' ', ' ', '\t', '\n', '\r', '\u0085', '\u00a0', '\u3000', '\ufeff', "'",
    's', 't', 'r', 'e', 'v', 'm', 'l', 'd', '.', '!', '👍', '\u200d', '\u0301', '𝟘', '𐍈', '\u2028', 'S', 'T', 'ё', '中', '\u0000']
  const out: string[] = []
  for (let i = 0; i < count; i++) {
    let s = ''
    const len = rand(30)
    for (let k = 0; k < len; k++) s += alphabet[rand(alphabet.length)]
    out.push(s)
  }
  return out
}
