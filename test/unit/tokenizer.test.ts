// The tokenizer's encoding rules, checked against answers worked out by hand from the GPT-2
// algorithm (pre-tokenizer pattern, byte alphabet, merges by rank, added tokens), plus round trips
// and streaming decode on tricky text.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BpeModel } from '../../src-main/core/tokenizer/bpe.ts'
import { BYTE_TO_CHAR, CHAR_TO_BYTE } from '../../src-main/core/tokenizer/byte-level.ts'
import { loadTokenizer, splitGpt2, type Tokenizer } from '../../src-main/core/tokenizer/index.ts'
import { tempDir } from '../helpers/temp.ts'
import { bl, handTokenizer, tokenizerJsonOf, TRICKY, writeTokenizerDir } from '../helpers/tokenizer.ts'
import { writeFile, mkdir } from 'node:fs/promises'

const FIXTURE = join(import.meta.dirname, '../fixtures/tiny-gpt2')

let tmp: Awaited<ReturnType<typeof tempDir>>
beforeAll(async () => {
  tmp = await tempDir('longctx-tok-')
})
afterAll(() => tmp.cleanup())

// ---- byte alphabet -----------------------------------------------------------------------

describe('byte-level alphabet', () => {
  it('maps printable Latin-1 to itself and shifts the other 68 bytes to U+0100.. in byte order', () => {
    expect(BYTE_TO_CHAR[0x21]).toBe('!')
    expect(BYTE_TO_CHAR[0x7e]).toBe('~')
    expect(BYTE_TO_CHAR[0xa1]).toBe('¡')
    expect(BYTE_TO_CHAR[0xff]).toBe('ÿ')
    // 0x00..0x20 are the first 33 shifted bytes, so space (0x20) is U+0120 'Ġ' and \n is U+010A 'Ċ'.
    expect(BYTE_TO_CHAR[0x00]).toBe('\u0100')
    expect(BYTE_TO_CHAR[0x20]).toBe('Ġ')
    expect(BYTE_TO_CHAR[0x0a]).toBe('Ċ')
    // then 0x7F..0xA0 (34 bytes) at U+0121..U+0142, then 0xAD (soft hyphen) at U+0143.
    expect(BYTE_TO_CHAR[0x7f]).toBe('\u0121')
    expect(BYTE_TO_CHAR[0xa0]).toBe('\u0142')
    expect(BYTE_TO_CHAR[0xad]).toBe('\u0143')
    expect(new Set(BYTE_TO_CHAR).size).toBe(256)
    BYTE_TO_CHAR.forEach((ch, b) => expect(CHAR_TO_BYTE[ch.charCodeAt(0)]).toBe(b))
  })
})

// ---- pre-tokenizer -----------------------------------------------------------------------

describe('GPT-2 pre-tokenizer', () => {
  it.each([
    ['Hello world', ['Hello', ' world']],
    ['  hello', [' ', ' hello']],
    ['\t\thello', ['\t', '\t', 'hello']],
    ['a  b', ['a', ' ', ' b']],
    ['trailing   ', ['trailing', '   ']],
    ['\n\n d', ['\n\n', ' d']],
    ["I'm they'll we've you're it's he'd don't", ['I', "'m", ' they', "'ll", ' we', "'ve", ' you', "'re", ' it', "'s", ' he', "'d", ' don', "'t"]],
    ["'sam", ["'s", 'am']],
    [" 's", [" '", 's']],
    ["DON'T", ['DON', "'", 'T']],
    ["x''s", ['x', "''", 's']],
    ['123abc x1.5', ['123', 'abc', ' x', '1', '.', '5']],
    ['Привет, мир!', ['Привет', ',', ' мир', '!']],
    ['a 👍👍 b', ['a', ' 👍👍', ' b']],
    ['!!! ...', ['!!!', ' ...']],
    // Oniguruma's \s has U+0085 and lacks U+FEFF (JS's \s is the other way round).
    ['x\u0085\u0085y', ['x', '\u0085', '\u0085', 'y']],
    ['a\ufeff\ufeffb', ['a', '\ufeff\ufeff', 'b']],
    ['a\u00a0\u00a0b', ['a', '\u00a0', '\u00a0', 'b']],
    ['', []],
  ])('%j', (text, pieces) => {
    expect(splitGpt2(text)).toEqual(pieces)
  })

  it('agrees with the pattern run by a regex engine on random text', () => {
    // The GPT-2 pattern with \s spelled as Oniguruma's Unicode whitespace.
    const WS = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000'
    const re = new RegExp(`'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|[${WS}]+(?![^${WS}])|[${WS}]+`, 'gu')
    const alphabet = ['a', 'Z', 'é', 'я', '1', '٣', '½', ' ', '\t', '\n', '\r', '\u0085', '\u00a0', '\u3000', '\ufeff', "'",
      's', 't', 'r', 'e', 'v', 'm', 'l', 'd', '.', '!', '👍', '\u200d', '\u0301', '𝟘', '𐍈', '\u2028']
    let seed = 12345
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
      return (seed >>> 8) % n
    }
    for (let i = 0; i < 3000; i++) {
      let s = ''
      const len = rand(24)
      for (let k = 0; k < len; k++) s += alphabet[rand(alphabet.length)]
      expect(splitGpt2(s), JSON.stringify(s)).toEqual(s.match(re) ?? [])
    }
  })
})

// ---- BPE merging -------------------------------------------------------------------------

const HELLO_MERGES: Array<[string, string]> = [
  ['h', 'e'], // 256 he
  ['l', 'l'], // 257 ll
  ['he', 'll'], // 258 hell
  ['hell', 'o'], // 259 hello
  [' ', 'w'], // 260 Ġw
  ['o', 'r'], // 261 or
  [' w', 'or'], // 262 Ġwor
  ['l', 'd'], // 263 ld
]

function bpeOf(merges: Array<[string, string]>): BpeModel {
  const t = handTokenizer(merges)
  return new BpeModel({ vocab: new Map(Object.entries(t.vocab)), merges: t.merges, unkToken: null, fuseUnk: false, ignoreMerges: false }, 'test')
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('BPE merges', () => {
  let hello: Tokenizer
  beforeAll(async () => {
    hello = await loadTokenizer(await writeTokenizerDir(join(tmp.path, 'hello'), handTokenizer(HELLO_MERGES, ['<|endoftext|>'])))
  })

  it('applies merges by rank, worked out by hand', () => {
    // "hello": he(0) -> ll(1) -> hell(2) -> hello(3).
    // " world": Ġw(4) -> or(5) -> Ġwor(6) -> ld(7): [Ġwor, ld].
    expect(Array.from(hello.encode('hello world'))).toEqual([259, 262, 263])
    // Two spaces: the first is a piece of its own (byte 0x20 = id 32 here).
    expect(Array.from(hello.encode('hello  world'))).toEqual([259, 32, 262, 263])
    // No "H e" merge: only ll applies, and (e, ll) is no merge.
    expect(Array.from(hello.encode('Hello'))).toEqual([72, 101, 257, 111])
    // Added token cut out first; its neighbours are encoded on their own.
    expect(Array.from(hello.encode('hello<|endoftext|>world'))).toEqual([259, 264, 119, 261, 263])
  })

  it.each(['short', 'long'] as const)('%s strategy: lowest rank first, leftmost on ties', (strategy) => {
    const aa = bpeOf([['a', 'a']]) // 256 = aa
    expect(Array.from(aa.encodeBytes(utf8('aaa'), 3, strategy))).toEqual([256, 97])
    expect(Array.from(aa.encodeBytes(utf8('aaaa'), 4, strategy))).toEqual([256, 256])
    // bc (rank 0) beats ab (rank 1) although ab is further left; then nothing merges with bc.
    const abcd = bpeOf([['b', 'c'], ['a', 'b'], ['c', 'd']]) // bc 256, ab 257, cd 258
    expect(Array.from(abcd.encodeBytes(utf8('abcd'), 4, strategy))).toEqual([97, 256, 100])
    // A merge that creates a better pair is followed at once, before the second "a b":
    // [a b a b] -> [ab a b] -> [aba b] (merging every "a b" first would give [ab ab]).
    const eager = bpeOf([['ab', 'a'], ['a', 'b']]) // aba 256, ab 257
    expect(Array.from(eager.encodeBytes(utf8('abab'), 4, strategy))).toEqual([256, 98])
    // A queued merge goes stale when its right neighbour changes: in "yabc", bc (0) turns the
    // queued "a b" (1) into the pair (a, bc), which must wait for its own rank (3), after "y a" (2).
    const stale = bpeOf([['b', 'c'], ['a', 'b'], ['y', 'a'], ['a', 'bc']]) // bc 256, ab 257, ya 258, abc 259
    expect(Array.from(stale.encodeBytes(utf8('yabc'), 4, strategy))).toEqual([258, 256])
  })

  it('the short and long merge loops agree with a plain reference on random words and merge lists', () => {
    let seed = 7
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
      return (seed >>> 8) % n
    }
    for (let trial = 0; trial < 40; trial++) {
      // Random merges over a 3-letter alphabet, in random (not training) order.
      const known = ['a', 'b', 'c']
      const merges: Array<[string, string]> = []
      for (let m = 0; m < 25; m++) {
        const pair: [string, string] = [known[rand(known.length)]!, known[rand(known.length)]!]
        if (merges.some(([x, y]) => x === pair[0] && y === pair[1])) continue
        merges.push(pair)
        if (!known.includes(pair[0] + pair[1])) known.push(pair[0] + pair[1])
      }
      for (let i = merges.length - 1; i > 0; i--) {
        const j = rand(i + 1)
        ;[merges[i], merges[j]] = [merges[j]!, merges[i]!]
      }
      const model = bpeOf(merges)
      const t = handTokenizer(merges)
      const rank = new Map(merges.map(([x, y], r) => [`${x} ${y}`, r]))
      for (let w = 0; w < 20; w++) {
        let word = ''
        const len = 1 + rand(trial % 2 === 0 ? 12 : 120)
        for (let k = 0; k < len; k++) word += 'abc'[rand(3)]
        // Reference: repeatedly merge the adjacent pair with the lowest (rank, position).
        const syms = word.split('')
        for (;;) {
          let best = -1
          let bestRank = Infinity
          for (let i = 0; i + 1 < syms.length; i++) {
            const r = rank.get(`${syms[i]} ${syms[i + 1]}`)
            if (r !== undefined && r < bestRank) {
              bestRank = r
              best = i
            }
          }
          if (best < 0) break
          syms.splice(best, 2, syms[best]! + syms[best + 1]!)
        }
        const expected = syms.map((s) => t.vocab[s])
        const bytes = utf8(word)
        expect(Array.from(model.encodeBytes(bytes, bytes.length, 'short')), word).toEqual(expected)
        expect(Array.from(model.encodeBytes(bytes, bytes.length, 'long')), word).toEqual(expected)
      }
    }
  })

  it('drops bytes the vocabulary lacks (HF without unk_token) and uses unk_token when set', async () => {
    const t = handTokenizer([])
    delete t.vocab[BYTE_TO_CHAR[0x7a]!] // no "z"
    const dir = join(tmp.path, 'no-z')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJsonOf(t)))
    expect(Array.from((await loadTokenizer(dir)).encode('azzb'))).toEqual([97, 98])
    t.vocab['<unk>'] = 300
    const withUnk = tokenizerJsonOf(t)
    ;(withUnk.model as Record<string, unknown>).unk_token = '<unk>'
    ;(withUnk.model as Record<string, unknown>).fuse_unk = true
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(withUnk))
    expect(Array.from((await loadTokenizer(dir)).encode('azzb'))).toEqual([97, 300, 98])
  })
})

// ---- added tokens ------------------------------------------------------------------------

describe('added tokens', () => {
  async function withAdded(added: Array<Record<string, unknown>>): Promise<Tokenizer> {
    const t = handTokenizer([])
    const dir = join(tmp.path, `added-${Math.random().toString(36).slice(2)}`)
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJsonOf({ ...t, added: added as never })))
    return loadTokenizer(dir)
  }

  it('lstrip and rstrip swallow the whitespace beside the token', async () => {
    const tok = await withAdded([
      { id: 256, content: '<L>', lstrip: true },
      { id: 257, content: '<R>', rstrip: true },
    ])
    // "a  <L> b": the two spaces before <L> go into it; " b" stays a word with its space.
    expect(Array.from(tok.encode('a  <L> b'))).toEqual([97, 256, 32, 98])
    expect(Array.from(tok.encode('a <R>  b'))).toEqual([97, 32, 257, 98])
  })

  it('single_word tokens match only between non-word characters', async () => {
    const tok = await withAdded([{ id: 256, content: 'cat', single_word: true, special: false }])
    expect(Array.from(tok.encode('a cat!'))).toEqual([97, 32, 256, 33])
    expect(Array.from(tok.encode('concat'))).toEqual([...'concat'].map((c) => c.charCodeAt(0)))
  })

  it('takes the longest token at a position and never matches inside a match', async () => {
    const tok = await withAdded([
      { id: 256, content: '<a>' },
      { id: 257, content: '<a><b>' },
    ])
    expect(Array.from(tok.encode('x<a><b><a>'))).toEqual([120, 257, 256])
  })

  it('matches normalized: false tokens before normalized ones, as HF does', async () => {
    // "xyz" (normalized) would win leftmost-longest, but "yz" (not normalized) is cut first.
    const tok = await withAdded([
      { id: 256, content: 'xyz', normalized: true, special: false },
      { id: 257, content: 'yz', normalized: false },
    ])
    expect(Array.from(tok.encode('xyz'))).toEqual([120, 257])
  })

  it('takes ids as HF re-adds the tokens: the vocabulary id, else the next id after the vocabulary', async () => {
    // HF ignores the ids written in added_tokens (it warns when they differ); tokenizers 0.23
    // gave these exactly the ids below.
    const tok = await withAdded([
      { id: 900, content: '<x>' },
      { id: 5, content: 'a', special: false },
      { id: 7, content: '<y>' },
    ])
    expect(Array.from(tok.encode('<y>a<x>'))).toEqual([257, 97, 256])
    expect(tok.vocabSize).toBe(258)
  })

  it('decode keeps special tokens unless asked to skip them', async () => {
    const tok = await withAdded([{ id: 256, content: '<|endoftext|>', special: true }])
    const ids = tok.encode('a<|endoftext|>b')
    expect(Array.from(ids)).toEqual([97, 256, 98])
    expect(tok.decode(ids)).toBe('a<|endoftext|>b')
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('ab')
    expect(tok.isSpecial(256)).toBe(true)
    expect(tok.isSpecial(97)).toBe(false)
  })
})

// ---- round trips and streaming -----------------------------------------------------------


describe('round trips on the fixture tokenizer', () => {
  let tok: Tokenizer
  beforeAll(async () => {
    tok = await loadTokenizer(FIXTURE)
  })

  it.each(TRICKY.map((t) => [t.length > 60 ? `${JSON.stringify(t.slice(0, 60))}... (${t.length})` : JSON.stringify(t), t]))(
    'decode(encode(%s)) is the text',
    (_, text) => {
      const ids = tok.encode(text)
      expect(tok.decode(ids)).toBe(text)
      expect(ids.every((id) => id >= 0 && id < tok.vocabSize)).toBe(true)
    },
  )

  it('encodes <|endoftext|> in text as the one EOS token', () => {
    expect(tok.eosTokenId).toBe(511)
    const ids = Array.from(tok.encode('a<|endoftext|>b'))
    expect(ids).toEqual([...tok.encode('a'), 511, ...tok.encode('b')])
    expect(Array.from(tok.encode('<|endoftext|>'))).toEqual([511])
    // An unfinished one is ordinary text.
    expect(Array.from(tok.encode('<|endoftext')).includes(511)).toBe(false)
  })

  it('gives the same ids with a warm cache as with a cold one', async () => {
    const text = TRICKY.join(' | ')
    const warm = tok.encode(text)
    const cold = (await loadTokenizer(FIXTURE)).encode(text)
    expect(Array.from(warm)).toEqual(Array.from(cold))
  })

  it('streaming decode gives the same text as decode, and never half a character', () => {
    for (const text of TRICKY) {
      const ids = tok.encode(text)
      const stream = tok.createDecoder()
      let out = ''
      for (const id of ids) {
        const piece = stream.push(id)
        expect(piece.includes('\ufffd')).toBe(false)
        out += piece
      }
      out += stream.flush()
      expect(out).toBe(tok.decode(ids))
    }
  })

  it('holds back the bytes of a 4-byte character until it is complete', () => {
    // U+1F389 is F0 9F 8E 89; the fixture has no merge for these bytes, so one token per byte.
    const ids = Array.from(tok.encode('🎉'))
    expect(ids.map((id) => tok.idToToken(id))).toEqual([BYTE_TO_CHAR[0xf0], BYTE_TO_CHAR[0x9f], BYTE_TO_CHAR[0x8e], BYTE_TO_CHAR[0x89]])
    const stream = tok.createDecoder()
    expect(ids.map((id) => stream.push(id))).toEqual(['', '', '', '🎉'])
    expect(stream.flush()).toBe('')
  })

  it('turns invalid byte sequences into U+FFFD in both decoders, the same way', () => {
    const id = (b: number): number => tok.tokenToId(BYTE_TO_CHAR[b]!)!
    // A lone continuation byte, a truncated 3-byte sequence before "a", and a dangling lead byte.
    const ids = [id(0x80), id(0xe2), id(0x82), id(0x61), id(0xf0)]
    expect(tok.decode(ids)).toBe('\ufffd\ufffda\ufffd')
    const stream = tok.createDecoder()
    expect(ids.map((i) => stream.push(i)).join('') + stream.flush()).toBe('\ufffd\ufffda\ufffd')
  })

  it('skips ids outside the vocabulary when decoding, as HF does', () => {
    expect(tok.decode([...tok.encode('ab'), 99_999, -1])).toBe('ab')
  })

  it('can skip special tokens while streaming', () => {
    const stream = tok.createDecoder({ skipSpecialTokens: true })
    expect(Array.from(tok.encode('a<|endoftext|>b'), (i) => stream.push(i)).join('') + stream.flush()).toBe('ab')
  })

  it('spells tokens as vocab.json does', () => {
    const id = tok.tokenToId('Ġthe')
    expect(id).toBeDefined()
    expect(tok.idToToken(id!)).toBe('Ġthe')
    expect(Array.from(tok.encode(' the'))).toEqual([id])
    expect(bl(' the')).toBe('Ġthe')
  })
})
