// An engine model -> a GGUF file that llama.cpp loads as architecture "gpt2" (and so
// node-llama-cpp, LM Studio, Ollama). The names, shapes and keys are the ones llama.cpp's
// LLM_ARCH_GPT2 loader asks for:
//   token_embd.weight [C, V]      position_embd.weight [C, P]     output_norm.{weight,bias} [C]
//   blk.N.attn_norm.{weight,bias} [C]    blk.N.attn_qkv.weight [C, 3C] + bias [3C]
//   blk.N.attn_output.weight [C, C] + bias [C]    blk.N.ffn_norm.{weight,bias} [C]
//   blk.N.ffn_up.weight [C, F] + bias [F]         blk.N.ffn_down.weight [F, C] + bias [C]
// (ggml order, ne[0] first). output.weight is left out: the engine's lm_head is always tied to
// the token embedding, and llama.cpp then reuses token_embd for the output projection.
// The engine's canonical layout already stores matrices [out, in] row-major with q, k, v stacked
// in that order, which is exactly ggml's [in, out] with ne[0] = in, so no tensor is transposed.
import path from 'node:path'
import type { EngineModel } from '../../../engine/model.ts'
import { loadNative, type NativeAttention } from '../../../engine/native.ts'
import { GgmlType, GgufValueType, LlamaFileType, tensorBytes, toF16, quantizeQ8_0 } from './format.ts'
import { ggufVocabulary } from './tokenizer-meta.ts'
import { GgufWriter } from './writer.ts'

export type GgufWeightType = 'f16' | 'q8_0'

export interface GgufExportOptions {
  model: EngineModel
  // the folder with the tokenizer files (and config.json for bos/eos ids): the source model's
  tokenizerDir: string
  out: string // the .gguf file to write
  type: GgufWeightType
  name?: string // general.name; default: the source folder's name
  description?: string
  onProgress?: (fraction: number, detail: string) => void
  signal?: AbortSignal
}

export interface GgufExportResult {
  path: string
  bytes: number
  tensors: number
  contextLength: number
  warnings: string[]
}

// The published ruGPT3XL restoration numbers the warning quotes: what dense attention does to a
// model trained with block-sparse layers.
export const DENSE_RUNTIME_WARNING =
  'This model uses block-sparse (or windowed) attention in some layers. llama.cpp and every runtime built on it ' +
  '(node-llama-cpp, LM Studio, Ollama) compute dense attention in all layers, so the GGUF will answer with ' +
  'lower quality than the native engine: the ruGPT3XL restoration measured perplexity 11.68 with its sparse ' +
  'layers and 50.1 when they were run dense. Chat with the checkpoint on the native engine for the exact model.'

// Custom keys for what llama.cpp's gpt2 architecture cannot express; runtimes ignore unknown keys.
export const LONGCTX_KEYS = {
  layerPattern: 'longctx.attention.layer_pattern', // string per layer: dense | sparse | window:N
  sparseBlock: 'longctx.attention.sparse.block',
  sparseLocal: 'longctx.attention.sparse.num_local_blocks',
  sparseGlobal: 'longctx.attention.sparse.num_global_blocks',
  sparsePerHead: 'longctx.attention.sparse.different_layout_per_head',
  sparsePatterns: 'longctx.attention.sparse.num_different_global_patterns',
  sparseUnidirectional: 'longctx.attention.sparse.unidirectional',
  sparseHorizontal: 'longctx.attention.sparse.horizontal_global_attention',
  dense: 'longctx.attention.dense_runtime_exact', // false when a dense runtime changes the model
} as const

// Which ggml type a weight gets: 1-D tensors (norms, biases) and the position table stay f32 as
// llama.cpp's own converter keeps them; matrices take the chosen type, except Q8_0 for rows that
// are not whole blocks (then f16).
function weightType(type: GgufWeightType, rowLength: number): GgmlType {
  if (type === 'f16') return GgmlType.F16
  return rowLength % 32 === 0 ? GgmlType.Q8_0 : GgmlType.F16
}

function encode(values: Float32Array, type: GgmlType): Uint8Array {
  switch (type) {
    case GgmlType.F32:
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
    case GgmlType.F16: {
      const h = toF16(values)
      return new Uint8Array(h.buffer, h.byteOffset, h.byteLength)
    }
    case GgmlType.Q8_0:
      return quantizeQ8_0(values)
  }
}

function nonDense(attention: readonly NativeAttention[]): boolean {
  return attention.some((a) => a !== 'dense')
}

export async function exportGguf(opts: GgufExportOptions): Promise<GgufExportResult> {
  const { model } = opts
  const cfg = model.config
  const warnings: string[] = []
  const C = cfg.nEmbd
  const F = cfg.nInner
  const L = cfg.nLayer
  opts.onProgress?.(0, 'reading the tokenizer')
  const vocab = await ggufVocabulary(opts.tokenizerDir, cfg.vocabSize)
  if (vocab.paddedIds > 0)
    warnings.push(`${vocab.paddedIds} embedding rows have no token in the tokenizer; they are written as unused [PAD] tokens.`)

  opts.onProgress?.(0.02, 'reading the weights')
  const params = await model.getParams()
  const layout = new Map(loadNative().paramLayout(cfg).tensors.map((t) => [t.name, t]))
  // A view of one canonical tensor, or of layer l's slice of a stacked (L, ...) tensor.
  const view = (name: string, layer?: number): Float32Array => {
    const t = layout.get(name)
    if (!t) throw new Error(`the engine's parameter layout has no tensor ${name}`)
    if (layer === undefined) return params.subarray(t.offset, t.offset + t.count)
    const per = t.count / L
    return params.subarray(t.offset + layer * per, t.offset + (layer + 1) * per)
  }

  const w = new GgufWriter()
  const arch = 'gpt2'
  const fileType = opts.type === 'f16' ? LlamaFileType.MOSTLY_F16 : LlamaFileType.MOSTLY_Q8_0
  w.string('general.architecture', arch)
  w.string('general.name', opts.name ?? path.basename(path.resolve(opts.tokenizerDir)))
  if (opts.description) w.string('general.description', opts.description)
  w.u32('general.file_type', fileType)
  w.u32('general.quantization_version', 2)
  w.u32(`${arch}.context_length`, cfg.nPositions)
  w.u32(`${arch}.embedding_length`, C)
  w.u32(`${arch}.block_count`, L)
  w.u32(`${arch}.feed_forward_length`, F)
  w.u32(`${arch}.attention.head_count`, cfg.nHead)
  w.f32(`${arch}.attention.layer_norm_epsilon`, cfg.layerNormEps)

  w.string('tokenizer.ggml.model', 'gpt2')
  // "gpt-2" selects GPT-2's pre-tokenizer regex; without it llama.cpp falls back to a default
  // split that tokenizes some text differently from the model's own tokenizer.
  w.string('tokenizer.ggml.pre', 'gpt-2')
  w.array('tokenizer.ggml.tokens', GgufValueType.STRING, vocab.tokens)
  w.array('tokenizer.ggml.token_type', GgufValueType.INT32, vocab.tokenTypes)
  w.array('tokenizer.ggml.merges', GgufValueType.STRING, vocab.merges)
  if (vocab.bosTokenId !== null) w.u32('tokenizer.ggml.bos_token_id', vocab.bosTokenId)
  if (vocab.eosTokenId !== null) w.u32('tokenizer.ggml.eos_token_id', vocab.eosTokenId)
  // GPT-2 never prepends BOS; a runtime that did would shift every position by one.
  w.bool('tokenizer.ggml.add_bos_token', false)
  w.bool('tokenizer.ggml.add_eos_token', false)

  const exact = !nonDense(cfg.attention)
  w.bool(LONGCTX_KEYS.dense, exact)
  if (!exact) {
    w.array(LONGCTX_KEYS.layerPattern, GgufValueType.STRING, cfg.attention)
    if (cfg.attention.includes('sparse')) {
      const s = cfg.sparse
      w.u32(LONGCTX_KEYS.sparseBlock, s.block)
      w.u32(LONGCTX_KEYS.sparseLocal, s.numLocalBlocks)
      w.u32(LONGCTX_KEYS.sparseGlobal, s.numGlobalBlocks)
      w.bool(LONGCTX_KEYS.sparsePerHead, s.differentLayoutPerHead)
      w.u32(LONGCTX_KEYS.sparsePatterns, s.numDifferentGlobalPatterns)
      w.bool(LONGCTX_KEYS.sparseUnidirectional, s.unidirectional)
      w.bool(LONGCTX_KEYS.sparseHorizontal, s.horizontalGlobalAttention)
    }
    warnings.push(DENSE_RUNTIME_WARNING)
  }

  let fellBack = 0
  const tensor = (name: string, dims: number[], values: () => Float32Array, type: GgmlType) => {
    if (type === GgmlType.F16 && opts.type === 'q8_0' && dims.length === 2) fellBack++
    w.addTensor({ name, dims, type, data: () => encode(values(), type) })
  }
  const mat = (name: string, dims: [number, number], values: () => Float32Array) =>
    tensor(name, dims, values, weightType(opts.type, dims[0]))
  const vec = (name: string, n: number, values: () => Float32Array) => tensor(name, [n], values, GgmlType.F32)

  mat('token_embd.weight', [C, cfg.vocabSize], () => view('wte'))
  // f32 like llama.cpp's converter: the rows a context extension added are what this export is
  // for, and get_rows on f32 costs nothing at inference.
  tensor('position_embd.weight', [C, cfg.nPositions], () => view('wpe'), GgmlType.F32)
  for (let l = 0; l < L; l++) {
    const b = `blk.${l}`
    vec(`${b}.attn_norm.weight`, C, () => view('ln1w', l))
    vec(`${b}.attn_norm.bias`, C, () => view('ln1b', l))
    mat(`${b}.attn_qkv.weight`, [C, 3 * C], () => view('qkvw', l))
    vec(`${b}.attn_qkv.bias`, 3 * C, () => view('qkvb', l))
    mat(`${b}.attn_output.weight`, [C, C], () => view('attprojw', l))
    vec(`${b}.attn_output.bias`, C, () => view('attprojb', l))
    vec(`${b}.ffn_norm.weight`, C, () => view('ln2w', l))
    vec(`${b}.ffn_norm.bias`, C, () => view('ln2b', l))
    mat(`${b}.ffn_up.weight`, [C, F], () => view('fcw', l))
    vec(`${b}.ffn_up.bias`, F, () => view('fcb', l))
    mat(`${b}.ffn_down.weight`, [F, C], () => view('fcprojw', l))
    vec(`${b}.ffn_down.bias`, C, () => view('fcprojb', l))
  }
  vec('output_norm.weight', C, () => view('lnfw'))
  vec('output_norm.bias', C, () => view('lnfb'))
  if (fellBack > 0)
    warnings.push(`${fellBack} matrices have rows that are not a multiple of 32 values and were written as f16 instead of q8_0.`)

  const tensors = w.layout()
  const bytes = await w.write(opts.out, {
    signal: opts.signal,
    onProgress: (p) => opts.onProgress?.(0.05 + 0.95 * (p.bytesWritten / p.totalBytes), p.tensor ? `writing ${p.tensor}` : 'writing the header'),
  })
  return { path: opts.out, bytes, tensors: tensors.length, contextLength: cfg.nPositions, warnings }
}

// Bytes the file will take, for a disk-space check before writing.
export function estimateGgufBytes(cfg: { vocabSize: number; nPositions: number; nEmbd: number; nLayer: number; nInner: number }, type: GgufWeightType): number {
  const C = cfg.nEmbd
  const m = (rows: number, cols: number) => tensorBytes(weightType(type, cols), rows * cols)
  const perLayer = m(3 * C, C) + m(C, C) + m(cfg.nInner, C) + m(C, cfg.nInner) + 4 * (9 * C + cfg.nInner)
  return m(cfg.vocabSize, C) + 4 * cfg.nPositions * C + cfg.nLayer * perLayer + 8 * C + 64 * 1024 + cfg.vocabSize * 48
}
