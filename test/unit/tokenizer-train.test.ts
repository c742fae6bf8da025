// The BPE trainer (scripts/train-bpe.ts) and the committed fixture model it helps make.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readSafetensorsHeader } from '../../src-main/core/safetensors.ts'
import { loadTokenizer } from '../../src-main/core/tokenizer/index.ts'
import { bpeToFiles, trainByteLevelBpe } from '../../src-main/core/tokenizer/train-bpe.ts'
import { buildFixture, FIXTURE_DIR } from '../../scripts/make-fixture-model.ts'
import { tempDir } from '../helpers/temp.ts'
import { writeFile } from 'node:fs/promises'

let tmp: Awaited<ReturnType<typeof tempDir>>
beforeAll(async () => {
  tmp = await tempDir('longctx-train-')
})
afterAll(() => tmp.cleanup())

describe('trainByteLevelBpe', () => {
  it('learns the merges worked out by hand', () => {
    // Pre-tokens: "ab", " ab", " ab", " ba". Pair counts: (a,b) 3, (Ġ,a) 2, (Ġ,b) 1, (b,a) 1,
    // so "a b" first; then (Ġ,ab) 2 beats the rest (1 each), and nothing else reaches 2.
    const bpe = trainByteLevelBpe(['ab ab ab ba'], { merges: 10 })
    expect(bpe.merges).toEqual([['a', 'b'], ['Ġ', 'ab']])
    expect(bpe.tokens.length).toBe(256 + 2 + 1)
    expect(bpe.tokens.slice(256)).toEqual(['ab', 'Ġab', '<|endoftext|>'])
    expect(bpe.specialTokens).toEqual([{ id: 258, content: '<|endoftext|>' }])
    // GPT-2's id order for the byte tokens: printable ASCII first ('!' = 0), space (Ġ) at 220.
    expect(bpe.tokens[0]).toBe('!')
    expect(bpe.tokens[220]).toBe('Ġ')
  })

  it('stops at the merge budget and breaks ties by the smaller pair', () => {
    // (a,b) and (c,d) both occur twice; "a" sorts before "c" in id order, so "a b" goes first.
    const bpe = trainByteLevelBpe(['cd ab cd ab'], { merges: 1, specialTokens: [] })
    expect(bpe.merges).toEqual([['a', 'b']])
    expect(bpe.tokens.length).toBe(257)
  })

  it('gives a token spelled twice one id (a special token that is also a learned token)', () => {
    // HF's trainer reuses the id when a new token's spelling is already in the vocabulary; a
    // vocab.json with the same key twice would lose one of them.
    const bpe = trainByteLevelBpe(['ab ab ab'], { merges: 1, specialTokens: ['ab'] })
    expect(bpe.tokens.length).toBe(257)
    expect(bpe.specialTokens).toEqual([{ id: 256, content: 'ab' }])
  })

  it('writes files that load and encode like the training segmentation', async () => {
    const bpe = trainByteLevelBpe(['ab ab ab ba'], { merges: 10 })
    const files = bpeToFiles(bpe)
    expect(files['merges.txt']).toBe('#version: 0.2\na b\nĠ ab\n')
    for (const [name, text] of Object.entries(files)) await writeFile(join(tmp.path, name), text)
    const tok = await loadTokenizer(tmp.path)
    // "ab" 256, " ab" 257, then " ba" has no merge: Ġ 220, b 65, a 64 (GPT-2 byte order: '!' = 0).
    expect(Array.from(tok.encode('ab ab ba<|endoftext|>'))).toEqual([256, 257, 220, 65, 64, 258])
    expect(tok.eosTokenId).toBe(258)
  })
})

describe('the committed fixture model', () => {
  it('is exactly what scripts/make-fixture-model.ts makes (rerun it after changing either)', async () => {
    const built = buildFixture()
    for (const [name, content] of Object.entries(built)) {
      const committed = await readFile(join(FIXTURE_DIR, name))
      expect(committed.equals(Buffer.from(content)), name).toBe(true)
    }
  })

  it('has the GPT2LMHeadModel layout: config, tensor names and Conv1D [in, out] shapes', async () => {
    const config = JSON.parse(await readFile(join(FIXTURE_DIR, 'config.json'), 'utf8')) as Record<string, unknown>
    expect(config).toMatchObject({
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      vocab_size: 512,
      n_positions: 128,
      n_embd: 64,
      n_layer: 2,
      n_head: 4,
      n_inner: null,
      layer_norm_epsilon: 1e-5,
      bos_token_id: 511,
      eos_token_id: 511,
    })
    const header = await readSafetensorsHeader(join(FIXTURE_DIR, 'model.safetensors'))
    const shapes = Object.fromEntries(header.tensors.map((t) => [t.name, t.shape]))
    expect(header.tensors.every((t) => t.dtype === 'F32')).toBe(true)
    const C = 64
    const expected: Record<string, number[]> = {
      'transformer.wte.weight': [512, C],
      'transformer.wpe.weight': [128, C],
      'transformer.ln_f.weight': [C],
      'transformer.ln_f.bias': [C],
    }
    for (const l of [0, 1]) {
      const p = `transformer.h.${l}.`
      Object.assign(expected, {
        [p + 'ln_1.weight']: [C],
        [p + 'ln_1.bias']: [C],
        [p + 'attn.c_attn.weight']: [C, 3 * C],
        [p + 'attn.c_attn.bias']: [3 * C],
        [p + 'attn.c_proj.weight']: [C, C],
        [p + 'attn.c_proj.bias']: [C],
        [p + 'ln_2.weight']: [C],
        [p + 'ln_2.bias']: [C],
        [p + 'mlp.c_fc.weight']: [C, 4 * C],
        [p + 'mlp.c_fc.bias']: [4 * C],
        [p + 'mlp.c_proj.weight']: [4 * C, C],
        [p + 'mlp.c_proj.bias']: [C],
      })
    }
    expect(shapes).toEqual(expected)
    expect(header.metadata).toEqual({ format: 'pt' })
  })

  it('has a 512-token tokenizer whose <|endoftext|> is the last id', async () => {
    const tok = await loadTokenizer(FIXTURE_DIR)
    expect(tok.vocabSize).toBe(512)
    expect(tok.eosTokenId).toBe(511)
    expect(tok.idToToken(511)).toBe('<|endoftext|>')
  })
})
