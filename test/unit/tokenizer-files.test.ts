// Loading tokenizer files: both forms give the same tokenizer, the folder report, the content
// hash, special tokens of vocab.json + merges.txt folders, and a clear error for each broken file.
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findTokenizerFiles, loadTokenizer, TokenizerFileError } from '../../src-main/core/tokenizer/index.ts'
import { tempDir } from '../helpers/temp.ts'
import { handTokenizer, tokenizerJsonOf, TRICKY, writeTokenizerDir } from '../helpers/tokenizer.ts'

const FIXTURE = join(import.meta.dirname, '../fixtures/tiny-gpt2')

let tmp: Awaited<ReturnType<typeof tempDir>>
let n = 0
const freshDir = async (): Promise<string> => {
  const dir = join(tmp.path, `d${n++}`)
  await mkdir(dir, { recursive: true })
  return dir
}
beforeAll(async () => {
  tmp = await tempDir('longctx-tokfiles-')
})
afterAll(() => tmp.cleanup())

async function copyFixture(names: string[]): Promise<string> {
  const dir = await freshDir()
  for (const name of names) await copyFile(join(FIXTURE, name), join(dir, name))
  return dir
}

describe('the two file forms', () => {
  it('tokenizer.json and vocab.json + merges.txt give identical ids on tricky text and the corpus', async () => {
    const fromJson = await loadTokenizer(await copyFixture(['tokenizer.json']))
    const fromVocab = await loadTokenizer(await copyFixture(['vocab.json', 'merges.txt']))
    expect(fromJson.kind).toBe('tokenizer.json')
    expect(fromVocab.kind).toBe('vocab.json+merges.txt')
    expect(fromVocab.vocabSize).toBe(fromJson.vocabSize)
    expect(fromVocab.eosTokenId).toBe(fromJson.eosTokenId)
    const corpus = (await readFile(join(import.meta.dirname, '../../resources/corpus/kjv-chapters.jsonl'), 'utf8'))
      .split('\n')
      .slice(0, 40)
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { text: string }).text)
    for (const text of [...TRICKY, ...corpus]) {
      expect(Array.from(fromVocab.encode(text))).toEqual(Array.from(fromJson.encode(text)))
    }
    // The <|endoftext|> of a vocab.json folder is special by GPT2Tokenizer's defaults.
    expect(Array.from(fromVocab.encode('a<|endoftext|>'))).toEqual(Array.from(fromJson.encode('a<|endoftext|>')))
    expect(fromVocab.isSpecial(511)).toBe(true)
  })

  it('prefers tokenizer.json when both are present, as transformers does', async () => {
    const dir = await copyFixture(['tokenizer.json', 'vocab.json', 'merges.txt'])
    expect((await loadTokenizer(dir)).kind).toBe('tokenizer.json')
  })

  it('reads merges given as ["a", "b"] pairs (newer tokenizer.json)', async () => {
    const t = handTokenizer([['h', 'e'], ['l', 'l']])
    const dir = await freshDir()
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJsonOf(t, {
      model: { type: 'BPE', vocab: t.vocab, merges: t.merges, ignore_merges: false },
    })))
    expect(Array.from((await loadTokenizer(dir)).encode('hell'))).toEqual([256, 257])
  })

  it('honours add_prefix_space in the ByteLevel pre-tokenizer', async () => {
    const t = handTokenizer([[' ', 'h']]) // 256 = Ġh
    const dir = await freshDir()
    const json = tokenizerJsonOf(t)
    ;(json.pre_tokenizer as Record<string, unknown>).add_prefix_space = true
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(json))
    const tok = await loadTokenizer(dir)
    expect(Array.from(tok.encode('h'))).toEqual([256])
    expect(Array.from(tok.encode(' h'))).toEqual([256])
  })
})

describe('findTokenizerFiles', () => {
  it('reports the form and the files present', async () => {
    expect(await findTokenizerFiles(FIXTURE)).toEqual({ kind: 'tokenizer.json', files: ['tokenizer.json', 'vocab.json', 'merges.txt'] })
    const vm = await copyFixture(['vocab.json', 'merges.txt'])
    await writeFile(join(vm, 'special_tokens_map.json'), '{}')
    expect(await findTokenizerFiles(vm)).toEqual({ kind: 'vocab.json+merges.txt', files: ['vocab.json', 'merges.txt', 'special_tokens_map.json'] })
  })

  it('is null for a folder without a complete tokenizer', async () => {
    expect(await findTokenizerFiles(await freshDir())).toBeNull()
    expect(await findTokenizerFiles(await copyFixture(['vocab.json']))).toBeNull()
    expect(await findTokenizerFiles(join(tmp.path, 'no-such-folder'))).toBeNull()
  })
})

describe('hash', () => {
  it('is a stable SHA-256 of the files that changes when a file changes', async () => {
    const dir = await copyFixture(['vocab.json', 'merges.txt'])
    const a = await loadTokenizer(dir)
    const b = await loadTokenizer(dir)
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/)
    expect(b.hash).toBe(a.hash)
    // Same vocabulary, one merge fewer.
    const merges = await readFile(join(dir, 'merges.txt'), 'utf8')
    await writeFile(join(dir, 'merges.txt'), merges.trimEnd().split('\n').slice(0, -1).join('\n') + '\n')
    expect((await loadTokenizer(dir)).hash).not.toBe(a.hash)
    // A special-tokens file changes what is encoded, so it is part of the hash.
    await writeFile(join(dir, 'merges.txt'), merges)
    await writeFile(join(dir, 'special_tokens_map.json'), JSON.stringify({ eos_token: '<|endoftext|>' }))
    expect((await loadTokenizer(dir)).hash).not.toBe(a.hash)
  })

  it('differs between the two forms of the same tokenizer', async () => {
    const fromJson = await loadTokenizer(await copyFixture(['tokenizer.json']))
    const fromVocab = await loadTokenizer(await copyFixture(['vocab.json', 'merges.txt']))
    expect(fromJson.hash).not.toBe(fromVocab.hash)
  })
})

describe('special tokens of a vocab.json + merges.txt folder', () => {
  it('follows special_tokens_map.json over tokenizer_config.json over the GPT-2 defaults', async () => {
    const t = handTokenizer([], ['<|endoftext|>', '</s>', '<pad>']) // 256, 257, 258
    const dir = await writeTokenizerDir(await freshDir(), t, { vocabMerges: true })
    // Defaults: <|endoftext|> is special and the EOS; </s> is plain text.
    let tok = await loadTokenizer(dir)
    expect(tok.eosTokenId).toBe(256)
    expect(Array.from(tok.encode('a<|endoftext|>'))).toEqual([97, 256])
    expect(Array.from(tok.encode('</s>'))).toEqual([60, 47, 115, 62])

    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<pad>', bos_token: '<pad>', unk_token: '<pad>' }))
    await writeFile(join(dir, 'special_tokens_map.json'), JSON.stringify({ eos_token: { content: '</s>', lstrip: false } }))
    tok = await loadTokenizer(dir)
    expect(tok.eosTokenId).toBe(257)
    expect(Array.from(tok.encode('a</s><pad>'))).toEqual([97, 257, 258])
    // No longer named anywhere, so ordinary text now.
    expect(Array.from(tok.encode('<|endoftext|>')).includes(256)).toBe(false)
  })

  it('cuts out the tokens of added_tokens.json', async () => {
    const dir = await writeTokenizerDir(await freshDir(), handTokenizer([]), { vocabMerges: true })
    await writeFile(join(dir, 'added_tokens.json'), JSON.stringify({ '<new>': 256 }))
    const tok = await loadTokenizer(dir)
    expect(Array.from(tok.encode('a<new>'))).toEqual([97, 256])
    expect(tok.isSpecial(256)).toBe(false)
    await writeFile(join(dir, 'added_tokens.json'), JSON.stringify({ '<new>': 'x' }))
    await expect(loadTokenizer(dir)).rejects.toThrow(/added_tokens.json: "<new>" must map to a non-negative integer id, got string "x"/)
  })

  it('takes the EOS of a tokenizer.json folder from special_tokens_map.json, then tokenizer_config.json', async () => {
    const dir = await copyFixture(['tokenizer.json'])
    expect((await loadTokenizer(dir)).eosTokenId).toBe(511)
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: 'Ġthe' }))
    const the = (await loadTokenizer(dir)).tokenToId('Ġthe')!
    expect((await loadTokenizer(dir)).eosTokenId).toBe(the)
    await writeFile(join(dir, 'special_tokens_map.json'), JSON.stringify({ eos_token: { content: '<|endoftext|>' } }))
    expect((await loadTokenizer(dir)).eosTokenId).toBe(511)
  })

  it('falls back to config.json eos_token_id when the tokenizer files name no EOS', async () => {
    const t = handTokenizer([], ['<s>']) // 256
    const dir = await writeTokenizerDir(await freshDir(), t, { vocabMerges: true })
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: null, bos_token: null, unk_token: null }))
    expect((await loadTokenizer(dir)).eosTokenId).toBeNull()
    await writeFile(join(dir, 'config.json'), JSON.stringify({ eos_token_id: 256 }))
    expect((await loadTokenizer(dir)).eosTokenId).toBe(256)
  })
})

describe('broken files', () => {
  const vocabOnly = (): Record<string, number> => handTokenizer([]).vocab

  async function expectError(dir: string, file: string, message: string | RegExp): Promise<void> {
    const err = await loadTokenizer(dir).then(
      () => null,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(TokenizerFileError)
    expect((err as TokenizerFileError).file).toBe(file)
    expect((err as TokenizerFileError).message).toMatch(message)
  }

  async function withTokenizerJson(content: string | object): Promise<[string, string]> {
    const dir = await freshDir()
    const file = join(dir, 'tokenizer.json')
    await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content))
    return [dir, file]
  }

  const good = (): Record<string, unknown> => tokenizerJsonOf(handTokenizer([['h', 'e']]))

  it('a folder with no tokenizer, or half of one', async () => {
    const empty = await freshDir()
    await expectError(empty, empty, /no tokenizer: expected tokenizer.json, or vocab.json \+ merges.txt/)
    const noMerges = await copyFixture(['vocab.json'])
    await expectError(noMerges, noMerges, /has vocab.json but no merges.txt/)
    const noVocab = await copyFixture(['merges.txt'])
    await expectError(noVocab, noVocab, /has merges.txt but no vocab.json/)
    const missing = join(tmp.path, 'no-such-folder')
    await expectError(missing, missing, /no such folder/)
  })

  it('empty, non-JSON and non-UTF-8 files', async () => {
    await expectError(...(await withTokenizerJson('')), /the file is empty/)
    await expectError(...(await withTokenizerJson('{"model": ')), /not valid JSON/)
    await expectError(...(await withTokenizerJson('[1, 2]')), /expected a JSON object at the top, got an array/)
    const dir = await freshDir()
    await writeFile(join(dir, 'vocab.json'), Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x30, 0x7d]))
    await writeFile(join(dir, 'merges.txt'), '#version: 0.2\n')
    await expectError(dir, join(dir, 'vocab.json'), /is not valid UTF-8/)
  })

  it('a tokenizer.json that is not GPT-2 byte-level BPE', async () => {
    await expectError(...(await withTokenizerJson({ ...good(), model: { type: 'Unigram', vocab: [] } })), /model.type is string "Unigram"; only BPE/)
    await expectError(...(await withTokenizerJson({ ...good(), normalizer: { type: 'NFKC' } })), /normalizer string "NFKC" is not supported/)
    await expectError(...(await withTokenizerJson({ ...good(), pre_tokenizer: { type: 'Metaspace' } })), /pre_tokenizer string "Metaspace" is not supported/)
    await expectError(...(await withTokenizerJson({ ...good(), decoder: { type: 'WordPiece' } })), /decoder string "WordPiece" is not supported/)
    const model = good().model as Record<string, unknown>
    await expectError(...(await withTokenizerJson({ ...good(), model: { ...model, byte_fallback: true } })), /byte_fallback is true/)
    await expectError(...(await withTokenizerJson({ ...good(), model: { ...model, continuing_subword_prefix: '##' } })), /continuing_subword_prefix is string "##"/)
    await expectError(...(await withTokenizerJson({ ...good(), model: { ...model, dropout: 0.1 } })), /dropout/)
  })

  it('bad vocabularies and merges in tokenizer.json', async () => {
    const model = good().model as Record<string, unknown>
    await expectError(...(await withTokenizerJson({ ...good(), model: { ...model, vocab: [] } })), /model.vocab must be an object of token -> id, got an array/)
    await expectError(...(await withTokenizerJson({ ...good(), model: { ...model, vocab: { ...vocabOnly(), x: -3 } } })), /model.vocab\["x"\] must be a non-negative integer id, got number -3/)
    await expectError(...(await withTokenizerJson({ ...good(), model: { ...model, merges: 'h e' } })), /model.merges must be an array/)
    await expectError(...(await withTokenizerJson({ ...good(), model: { ...model, merges: ['h  e'] } })), /model.merges\[0\]: expected two tokens separated by one space, got "h  e"/)
    await expectError(...(await withTokenizerJson({ ...good(), model: { ...model, merges: [['h', 'e', 'x']] } })), /model.merges\[0\] must be "a b" or \["a", "b"\]/)
    await expectError(...(await withTokenizerJson({ ...good(), model: { ...model, merges: ['h e', 'q zz'] } })), /merge 2 \("q" "zz"\): "zz" is not in the vocabulary/)
    // Both parts known, but the merged token is missing.
    await expectError(...(await withTokenizerJson({ ...good(), model: { ...model, vocab: vocabOnly() } })), /merge 1 \("h" "e"\): the merged token "he" is not in the vocabulary/)
    await expectError(...(await withTokenizerJson({ ...good(), added_tokens: [{ content: '<x>' }] })), /added_tokens\[0\].id must be a non-negative integer, got nothing/)
    await expectError(...(await withTokenizerJson({ ...good(), added_tokens: [{ id: 5, content: '' }] })), /added_tokens\[0\].content must be a non-empty string/)
    await expectError(...(await withTokenizerJson({ ...good(), model: { ...model, unk_token: '<unk>' } })), /unk_token "<unk>" is not in the vocabulary/)
  })

  it('bad vocab.json and merges.txt', async () => {
    const dir = await freshDir()
    const vocabFile = join(dir, 'vocab.json')
    const mergesFile = join(dir, 'merges.txt')
    await writeFile(vocabFile, JSON.stringify({ ...vocabOnly(), he: 256 }))
    await writeFile(mergesFile, '#version: 0.2\nh e\nh e x\n')
    await expectError(dir, mergesFile, /line 3: expected two tokens separated by one space, got "h e x"/)
    await writeFile(mergesFile, '#version: 0.2\nh e\nhe zz\n')
    await expectError(dir, `${mergesFile} (with ${vocabFile})`, /merge 2 \("he" "zz"\): "zz" is not in the vocabulary/)
    await writeFile(mergesFile, 'h e\r\n')
    expect(Array.from((await loadTokenizer(dir)).encode('he'))).toEqual([256])
    await writeFile(vocabFile, JSON.stringify({ a: 'one' }))
    await expectError(dir, vocabFile, /the vocabulary\["a"\] must be a non-negative integer id, got string "one"/)
    await writeFile(vocabFile, '{}')
    await expectError(dir, vocabFile, /the vocabulary is empty/)
    await writeFile(vocabFile, JSON.stringify(vocabOnly()))
    await writeFile(join(dir, 'special_tokens_map.json'), '["eos"]')
    await expectError(dir, join(dir, 'special_tokens_map.json'), /expected a JSON object, got an array/)
  })
})
