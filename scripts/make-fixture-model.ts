// Writes test/fixtures/tiny-gpt2/: a GPT2LMHeadModel-layout model folder of about 560 KB that the
// engine, model import and tokenizer tests load like a real checkpoint.
//
//   npx tsx scripts/make-fixture-model.ts
//
// - config.json as transformers writes it for GPT-2 (n_positions 128, n_embd 64, 2 layers, 4 heads).
// - model.safetensors in F32 with HF's GPT-2 tensor names and Conv1D [in, out] layout; lm_head is
//   tied to wte and so not stored, as transformers does.
// - vocab.json + merges.txt + tokenizer.json: 255 merges trained by scripts/train-bpe.ts's trainer
//   on resources/corpus (the King James Bible), so 512 tokens with <|endoftext|> = 511.
// Weights are normal(0, 0.02) from a fixed seed. Biases and LayerNorm parameters are random too
// (LayerNorm weights around 1), not 0 and 1: a test that swaps two of them, or reads a Conv1D
// weight transposed, then gets different numbers instead of passing by luck.
// The output is the same on every run; the test suite checks the committed files against it.

import { mkdirSync, realpathSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { encodeSafetensors, type TensorToWrite } from '../src-main/core/safetensors.ts'
import { bpeToFiles, trainByteLevelBpe } from '../src-main/core/tokenizer/train-bpe.ts'
import { DEFAULT_CORPUS, REPO_ROOT, readDocuments } from './corpus.ts'

export const FIXTURE_DIR = join(REPO_ROOT, 'test/fixtures/tiny-gpt2')
const SEED = 20240611
const MERGES = 255
const N_POSITIONS = 128
const N_EMBD = 64
const N_LAYER = 2
const N_HEAD = 4
const STD = 0.02

/** mulberry32: a tiny 32-bit generator, enough for reproducible test weights. */
function uniform(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    // (0, 1]: never 0, so the log below is finite
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967296
  }
}

function normalSource(seed: number): (mean: number, std: number) => number {
  const next = uniform(seed)
  let spare: number | null = null
  return (mean, std) => {
    if (spare !== null) {
      const z = spare
      spare = null
      return mean + std * z
    }
    // Box-Muller: two normals per pair of uniforms.
    const r = Math.sqrt(-2 * Math.log(next()))
    const theta = 2 * Math.PI * next()
    spare = r * Math.sin(theta)
    return mean + std * r * Math.cos(theta)
  }
}

export interface FixtureFiles {
  [name: string]: Buffer | string
}

export function buildFixture(): FixtureFiles {
  const bpe = trainByteLevelBpe(readDocuments(DEFAULT_CORPUS), { merges: MERGES })
  const tokenizerFiles = bpeToFiles(bpe)
  const vocabSize = bpe.tokens.length
  const eos = bpe.specialTokens.find((t) => t.content === '<|endoftext|>')!.id

  const normal = normalSource(SEED)
  const tensors: TensorToWrite[] = []
  const add = (name: string, shape: number[], mean = 0): void => {
    const data = new Float32Array(shape.reduce((n, d) => n * d, 1))
    for (let i = 0; i < data.length; i++) data[i] = normal(mean, STD)
    tensors.push({ name, dtype: 'F32', shape, data })
  }
  const C = N_EMBD
  add('transformer.wte.weight', [vocabSize, C])
  add('transformer.wpe.weight', [N_POSITIONS, C])
  for (let l = 0; l < N_LAYER; l++) {
    const p = `transformer.h.${l}.`
    add(p + 'ln_1.weight', [C], 1)
    add(p + 'ln_1.bias', [C])
    add(p + 'attn.c_attn.weight', [C, 3 * C])
    add(p + 'attn.c_attn.bias', [3 * C])
    add(p + 'attn.c_proj.weight', [C, C])
    add(p + 'attn.c_proj.bias', [C])
    add(p + 'ln_2.weight', [C], 1)
    add(p + 'ln_2.bias', [C])
    add(p + 'mlp.c_fc.weight', [C, 4 * C])
    add(p + 'mlp.c_fc.bias', [4 * C])
    add(p + 'mlp.c_proj.weight', [4 * C, C])
    add(p + 'mlp.c_proj.bias', [C])
  }
  add('transformer.ln_f.weight', [C], 1)
  add('transformer.ln_f.bias', [C])

  const config = {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: vocabSize,
    n_positions: N_POSITIONS,
    n_ctx: N_POSITIONS,
    n_embd: C,
    n_layer: N_LAYER,
    n_head: N_HEAD,
    n_inner: null,
    activation_function: 'gelu_new',
    resid_pdrop: 0.0,
    embd_pdrop: 0.0,
    attn_pdrop: 0.0,
    layer_norm_epsilon: 1e-5,
    initializer_range: STD,
    scale_attn_weights: true,
    tie_word_embeddings: true,
    use_cache: true,
    bos_token_id: eos,
    eos_token_id: eos,
    torch_dtype: 'float32',
  }
  return {
    'config.json': JSON.stringify(config, null, 2) + '\n',
    'model.safetensors': encodeSafetensors(tensors, { format: 'pt' }),
    ...tokenizerFiles,
  }
}

// Run as a script (not when a test imports buildFixture).
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const files = buildFixture()
  mkdirSync(FIXTURE_DIR, { recursive: true })
  let total = 0
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(FIXTURE_DIR, name), content)
    total += Buffer.byteLength(content)
  }
  console.log(`${FIXTURE_DIR}: ${Object.keys(files).join(', ')} (${(total / 1024).toFixed(0)} KiB)`)
}
