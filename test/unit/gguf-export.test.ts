// The GGUF export read back by an independent parser written here from the GGUF spec (not the
// writer's code): every metadata key with its type and value, every tensor's name, shape, type
// and offset, the alignment, and the tensor bytes against the engine's parameters.
import { readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportGguf, DENSE_RUNTIME_WARNING, estimateGgufBytes } from '../../src-main/core/export/gguf/export-gguf.ts'
import { loadTokenizer } from '../../src-main/core/tokenizer/index.ts'
import { EngineModel } from '../../src-main/engine/model.ts'
import { loadNative } from '../../src-main/engine/native.ts'
import { tempDir } from '../helpers/temp.ts'
import { FIXTURE_DIR } from '../helpers/trained-tiny.ts'

// ---- an independent GGUF v3 reader -------------------------------------------------------------

type Value = number | bigint | boolean | string | Value[]
interface ParsedKv {
  type: number
  itemType?: number
  value: Value
}
interface ParsedTensor {
  name: string
  dims: number[]
  type: number
  offset: number
}
interface ParsedGguf {
  version: number
  kv: Map<string, ParsedKv>
  tensors: ParsedTensor[]
  dataStart: number
  buf: Buffer
}

function parseGguf(buf: Buffer): ParsedGguf {
  let p = 0
  const u32 = () => {
    const v = buf.readUInt32LE(p)
    p += 4
    return v
  }
  const u64 = () => {
    const v = buf.readBigUInt64LE(p)
    p += 8
    return v
  }
  const str = () => {
    const n = Number(u64())
    const s = buf.toString('utf8', p, p + n)
    p += n
    return s
  }
  const value = (type: number): Value => {
    switch (type) {
      case 0: return buf.readUInt8(p++)
      case 1: return buf.readInt8(p++)
      case 2: { const v = buf.readUInt16LE(p); p += 2; return v }
      case 3: { const v = buf.readInt16LE(p); p += 2; return v }
      case 4: return u32()
      case 5: { const v = buf.readInt32LE(p); p += 4; return v }
      case 6: { const v = buf.readFloatLE(p); p += 4; return v }
      case 7: { const v = buf.readUInt8(p++); if (v > 1) throw new Error(`bad bool ${v}`); return v === 1 }
      case 8: return str()
      case 10: return u64()
      case 11: { const v = buf.readBigInt64LE(p); p += 8; return v }
      case 12: { const v = buf.readDoubleLE(p); p += 8; return v }
      default: throw new Error(`unknown GGUF value type ${type} at ${p}`)
    }
  }
  if (buf.toString('latin1', 0, 4) !== 'GGUF') throw new Error('bad magic')
  p = 4
  const version = u32()
  const nTensors = Number(u64())
  const nKv = Number(u64())
  const kv = new Map<string, ParsedKv>()
  for (let i = 0; i < nKv; i++) {
    const key = str()
    const type = u32()
    if (kv.has(key)) throw new Error(`duplicate key ${key}`)
    if (type === 9) {
      const itemType = u32()
      const n = Number(u64())
      const items: Value[] = []
      for (let j = 0; j < n; j++) items.push(value(itemType))
      kv.set(key, { type, itemType, value: items })
    } else kv.set(key, { type, value: value(type) })
  }
  const tensors: ParsedTensor[] = []
  for (let i = 0; i < nTensors; i++) {
    const name = str()
    const nd = u32()
    const dims: number[] = []
    for (let d = 0; d < nd; d++) dims.push(Number(u64()))
    tensors.push({ name, dims, type: u32(), offset: Number(u64()) })
  }
  const alignment = (kv.get('general.alignment')?.value as number | undefined) ?? 32
  const dataStart = Math.ceil(p / alignment) * alignment
  for (let i = p; i < dataStart; i++) if (buf[i] !== 0) throw new Error('non-zero header padding')
  return { version, kv, tensors, dataStart, buf }
}

const F32 = 0
const F16 = 1
const Q8_0 = 8
const typeBytes = (type: number, n: number) => (type === F32 ? n * 4 : type === F16 ? n * 2 : (n / 32) * 34)

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 31
  const m = h & 1023
  return e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15)
}

function tensorValues(g: ParsedGguf, t: ParsedTensor): Float32Array {
  const n = t.dims.reduce((a, b) => a * b, 1)
  const at = g.dataStart + t.offset
  const out = new Float32Array(n)
  if (t.type === F32) for (let i = 0; i < n; i++) out[i] = g.buf.readFloatLE(at + 4 * i)
  else if (t.type === F16) for (let i = 0; i < n; i++) out[i] = halfToFloat(g.buf.readUInt16LE(at + 2 * i))
  else if (t.type === Q8_0)
    for (let b = 0; b < n / 32; b++) {
      const d = halfToFloat(g.buf.readUInt16LE(at + 34 * b))
      for (let j = 0; j < 32; j++) out[b * 32 + j] = d * g.buf.readInt8(at + 34 * b + 2 + j)
    }
  else throw new Error(`type ${t.type}`)
  return out
}

// ---- the tests ---------------------------------------------------------------------------------

let dir: Awaited<ReturnType<typeof tempDir>>
let model: EngineModel
let params: Float32Array

beforeAll(async () => {
  dir = await tempDir('longctx-gguf-')
  model = await EngineModel.load(FIXTURE_DIR)
  params = await model.getParams()
})
afterAll(async () => {
  model?.dispose()
  await dir?.cleanup()
})

// The canonical tensors and the GGUF tensor each one becomes, with ggml dims.
function expectedTensors(cfg: EngineModel['config']) {
  const { nEmbd: C, nInner: F, nLayer: L, vocabSize: V, nPositions: P } = cfg
  const layout = new Map(loadNative().paramLayout(cfg).tensors.map((t) => [t.name, t]))
  const list: Array<{ name: string; dims: number[]; src: string; layer?: number; matrix: boolean }> = [
    { name: 'token_embd.weight', dims: [C, V], src: 'wte', matrix: true },
    { name: 'position_embd.weight', dims: [C, P], src: 'wpe', matrix: false },
  ]
  for (let l = 0; l < L; l++) {
    const b = `blk.${l}`
    list.push(
      { name: `${b}.attn_norm.weight`, dims: [C], src: 'ln1w', layer: l, matrix: false },
      { name: `${b}.attn_norm.bias`, dims: [C], src: 'ln1b', layer: l, matrix: false },
      { name: `${b}.attn_qkv.weight`, dims: [C, 3 * C], src: 'qkvw', layer: l, matrix: true },
      { name: `${b}.attn_qkv.bias`, dims: [3 * C], src: 'qkvb', layer: l, matrix: false },
      { name: `${b}.attn_output.weight`, dims: [C, C], src: 'attprojw', layer: l, matrix: true },
      { name: `${b}.attn_output.bias`, dims: [C], src: 'attprojb', layer: l, matrix: false },
      { name: `${b}.ffn_norm.weight`, dims: [C], src: 'ln2w', layer: l, matrix: false },
      { name: `${b}.ffn_norm.bias`, dims: [C], src: 'ln2b', layer: l, matrix: false },
      { name: `${b}.ffn_up.weight`, dims: [C, F], src: 'fcw', layer: l, matrix: true },
      { name: `${b}.ffn_up.bias`, dims: [F], src: 'fcb', layer: l, matrix: false },
      { name: `${b}.ffn_down.weight`, dims: [F, C], src: 'fcprojw', layer: l, matrix: true },
      { name: `${b}.ffn_down.bias`, dims: [C], src: 'fcprojb', layer: l, matrix: false },
    )
  }
  list.push(
    { name: 'output_norm.weight', dims: [C], src: 'lnfw', matrix: false },
    { name: 'output_norm.bias', dims: [C], src: 'lnfb', matrix: false },
  )
  const source = (p: Float32Array, e: (typeof list)[number]) => {
    const t = layout.get(e.src)!
    if (e.layer === undefined) return p.subarray(t.offset, t.offset + t.count)
    const per = t.count / L
    return p.subarray(t.offset + e.layer * per, t.offset + (e.layer + 1) * per)
  }
  return { list, source }
}

function checkLayout(g: ParsedGguf, fileBytes: number) {
  const alignment = g.kv.get('general.alignment')!.value as number
  expect(alignment).toBe(32)
  expect(g.dataStart % alignment).toBe(0)
  let expectedOffset = 0
  for (const t of g.tensors) {
    expect(t.offset, t.name).toBe(expectedOffset)
    expect(t.offset % alignment).toBe(0)
    const n = t.dims.reduce((a, b) => a * b, 1)
    expectedOffset = Math.ceil((t.offset + typeBytes(t.type, n)) / alignment) * alignment
  }
  expect(g.dataStart + expectedOffset).toBe(fileBytes)
}

describe('GGUF export of the tiny GPT-2 fixture', () => {
  it('f16: every key, tensor and value as llama.cpp reads them', async () => {
    const out = join(dir.path, 'tiny-f16.gguf')
    const progress: number[] = []
    const r = await exportGguf({ model, tokenizerDir: FIXTURE_DIR, out, type: 'f16', onProgress: (f) => progress.push(f) })
    expect(r.warnings).toEqual([])
    const buf = await readFile(out)
    expect(r.bytes).toBe(buf.length)
    expect(Math.abs(estimateGgufBytes(model.config, 'f16') - buf.length) / buf.length).toBeLessThan(0.25)
    expect(progress.at(-1)).toBeCloseTo(1, 5)
    expect(progress.every((f, i) => i === 0 || f >= progress[i - 1]!)).toBe(true)
    const g = parseGguf(buf)
    expect(g.version).toBe(3)

    const tok = await loadTokenizer(FIXTURE_DIR)
    const merges = (await readFile(join(FIXTURE_DIR, 'merges.txt'), 'utf8')).split('\n').filter((l, i) => l && !(i === 0 && l.startsWith('#')))
    const kvs = Object.fromEntries([...g.kv].map(([k, v]) => [k, v]))
    const scalar = (type: number, value: Value) => ({ type, value })
    expect(Object.keys(kvs).sort()).toEqual(
      [
        'general.alignment',
        'general.architecture',
        'general.name',
        'general.file_type',
        'general.quantization_version',
        'gpt2.context_length',
        'gpt2.embedding_length',
        'gpt2.block_count',
        'gpt2.feed_forward_length',
        'gpt2.attention.head_count',
        'gpt2.attention.layer_norm_epsilon',
        'tokenizer.ggml.model',
        'tokenizer.ggml.pre',
        'tokenizer.ggml.tokens',
        'tokenizer.ggml.token_type',
        'tokenizer.ggml.merges',
        'tokenizer.ggml.bos_token_id',
        'tokenizer.ggml.eos_token_id',
        'tokenizer.ggml.add_bos_token',
        'tokenizer.ggml.add_eos_token',
        'longctx.attention.dense_runtime_exact',
      ].sort(),
    )
    expect(kvs['general.alignment']).toEqual(scalar(4, 32))
    expect(kvs['general.architecture']).toEqual(scalar(8, 'gpt2'))
    expect(kvs['general.name']).toEqual(scalar(8, 'tiny-gpt2'))
    expect(kvs['general.file_type']).toEqual(scalar(4, 1)) // MOSTLY_F16
    expect(kvs['general.quantization_version']).toEqual(scalar(4, 2))
    expect(kvs['gpt2.context_length']).toEqual(scalar(4, 128))
    expect(kvs['gpt2.embedding_length']).toEqual(scalar(4, 64))
    expect(kvs['gpt2.block_count']).toEqual(scalar(4, 2))
    expect(kvs['gpt2.feed_forward_length']).toEqual(scalar(4, 256))
    expect(kvs['gpt2.attention.head_count']).toEqual(scalar(4, 4))
    expect(kvs['gpt2.attention.layer_norm_epsilon']!.type).toBe(6)
    expect(kvs['gpt2.attention.layer_norm_epsilon']!.value).toBeCloseTo(1e-5, 10)
    expect(kvs['tokenizer.ggml.model']).toEqual(scalar(8, 'gpt2'))
    expect(kvs['tokenizer.ggml.pre']).toEqual(scalar(8, 'gpt-2'))
    expect(kvs['tokenizer.ggml.bos_token_id']).toEqual(scalar(4, 511))
    expect(kvs['tokenizer.ggml.eos_token_id']).toEqual(scalar(4, 511))
    expect(kvs['tokenizer.ggml.add_bos_token']).toEqual(scalar(7, false))
    expect(kvs['tokenizer.ggml.add_eos_token']).toEqual(scalar(7, false))
    expect(kvs['longctx.attention.dense_runtime_exact']).toEqual(scalar(7, true))
    const tokens = kvs['tokenizer.ggml.tokens']!
    expect(tokens.itemType).toBe(8)
    expect(tokens.value).toEqual(Array.from({ length: 512 }, (_, i) => tok.idToToken(i)))
    const types = kvs['tokenizer.ggml.token_type']!
    expect(types.itemType).toBe(5)
    expect(types.value).toEqual(Array.from({ length: 512 }, (_, i) => (i === 511 ? 3 : 1)))
    expect(kvs['tokenizer.ggml.merges']!.itemType).toBe(8)
    expect(kvs['tokenizer.ggml.merges']!.value).toEqual(merges)

    const { list, source } = expectedTensors(model.config)
    expect(g.tensors.map((t) => [t.name, t.dims])).toEqual(list.map((e) => [e.name, e.dims]))
    checkLayout(g, buf.length)
    for (const [i, e] of list.entries()) {
      const t = g.tensors[i]!
      expect(t.type, e.name).toBe(e.matrix ? F16 : F32)
      const want = source(params, e)
      const got = tensorValues(g, t)
      if (t.type === F32) expect(Buffer.from(got.buffer).equals(Buffer.from(want.slice().buffer)), e.name).toBe(true)
      else for (let k = 0; k < want.length; k++) expect(Math.abs(got[k]! - want[k]!), e.name).toBeLessThanOrEqual(Math.abs(want[k]!) * 2 ** -11 + 2 ** -25)
    }
  })

  it('q8_0: matrices in Q8_0 blocks within half a step, norms and biases exact in f32', async () => {
    const out = join(dir.path, 'tiny-q8.gguf')
    const r = await exportGguf({ model, tokenizerDir: FIXTURE_DIR, out, type: 'q8_0', name: 'tiny q8' })
    expect(r.warnings).toEqual([])
    const buf = await readFile(out)
    const g = parseGguf(buf)
    expect(g.kv.get('general.file_type')!.value).toBe(7) // MOSTLY_Q8_0
    expect(g.kv.get('general.name')!.value).toBe('tiny q8')
    checkLayout(g, buf.length)
    const { list, source } = expectedTensors(model.config)
    for (const [i, e] of list.entries()) {
      const t = g.tensors[i]!
      expect(t.type, e.name).toBe(e.matrix ? Q8_0 : F32)
      const want = source(params, e)
      const got = tensorValues(g, t)
      if (t.type === F32) {
        expect(Buffer.from(got.buffer).equals(Buffer.from(want.slice().buffer)), e.name).toBe(true)
        continue
      }
      for (let b = 0; b < want.length / 32; b++) {
        let amax = 0
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(want[b * 32 + j]!))
        for (let j = 0; j < 32; j++)
          expect(Math.abs(got[b * 32 + j]! - want[b * 32 + j]!)).toBeLessThanOrEqual((amax / 127) * 0.5 + amax * 2 ** -10)
      }
    }
    expect(buf.length).toBeLessThan((await stat(join(dir.path, 'tiny-f16.gguf'))).size)
  })

  it('a block-sparse model gets the longctx sparse keys and the dense-runtime warning', async () => {
    const sparse = await EngineModel.create(
      {
        vocabSize: 512,
        nPositions: 64,
        nEmbd: 32,
        nLayer: 2,
        nHead: 4,
        attention: ['sparse', 'dense'],
        sparse: { block: 16, numLocalBlocks: 2, numGlobalBlocks: 1, numDifferentGlobalPatterns: 1, differentLayoutPerHead: false },
      },
      3,
    )
    try {
      const out = join(dir.path, 'sparse.gguf')
      const r = await exportGguf({ model: sparse, tokenizerDir: FIXTURE_DIR, out, type: 'f16' })
      expect(r.warnings).toEqual([DENSE_RUNTIME_WARNING])
      expect(r.warnings[0]).toMatch(/11\.68.*50\.1/)
      const g = parseGguf(await readFile(out))
      const v = (k: string) => g.kv.get(k)
      expect(v('longctx.attention.dense_runtime_exact')).toEqual({ type: 7, value: false })
      expect(v('longctx.attention.layer_pattern')).toEqual({ type: 9, itemType: 8, value: ['sparse', 'dense'] })
      expect(v('longctx.attention.sparse.block')).toEqual({ type: 4, value: 16 })
      expect(v('longctx.attention.sparse.num_local_blocks')).toEqual({ type: 4, value: 2 })
      expect(v('longctx.attention.sparse.num_global_blocks')).toEqual({ type: 4, value: 1 })
      expect(v('longctx.attention.sparse.different_layout_per_head')).toEqual({ type: 7, value: false })
      expect(v('longctx.attention.sparse.num_different_global_patterns')).toEqual({ type: 4, value: 1 })
      expect(v('longctx.attention.sparse.unidirectional')).toEqual({ type: 7, value: true })
      expect(v('longctx.attention.sparse.horizontal_global_attention')).toEqual({ type: 7, value: false })
      expect(v('gpt2.context_length')!.value).toBe(64)
    } finally {
      sparse.dispose()
    }
  })

  it('pads a vocabulary shorter than the embedding and keeps rows that are not whole Q8_0 blocks in f16', async () => {
    const odd = await EngineModel.create({ vocabSize: 520, nPositions: 32, nEmbd: 48, nLayer: 1, nHead: 4 }, 5)
    try {
      const out = join(dir.path, 'odd.gguf')
      const r = await exportGguf({ model: odd, tokenizerDir: FIXTURE_DIR, out, type: 'q8_0' })
      expect(r.warnings.join('\n')).toMatch(/8 embedding rows have no token/)
      expect(r.warnings.join('\n')).toMatch(/written as f16 instead of q8_0/)
      const g = parseGguf(await readFile(out))
      const tokens = g.kv.get('tokenizer.ggml.tokens')!.value as string[]
      expect(tokens.length).toBe(520)
      expect(tokens.slice(512)).toEqual(Array.from({ length: 8 }, (_, i) => `[PAD${512 + i}]`))
      expect((g.kv.get('tokenizer.ggml.token_type')!.value as number[]).slice(512)).toEqual(Array(8).fill(5))
      const type = (n: string) => g.tensors.find((t) => t.name === n)!.type
      expect(type('token_embd.weight')).toBe(F16) // rows of 48
      expect(type('blk.0.attn_qkv.weight')).toBe(F16)
      expect(type('blk.0.ffn_down.weight')).toBe(Q8_0) // rows of 192
    } finally {
      odd.dispose()
    }
  })

  it('refuses a tokenizer bigger than the embedding table, and leaves no file when cancelled', async () => {
    const small = await EngineModel.create({ vocabSize: 300, nPositions: 32, nEmbd: 32, nLayer: 1, nHead: 4 }, 5)
    try {
      await expect(exportGguf({ model: small, tokenizerDir: FIXTURE_DIR, out: join(dir.path, 'x.gguf'), type: 'f16' })).rejects.toThrow(
        /512 tokens but the model only 300/,
      )
    } finally {
      small.dispose()
    }
    const abort = new AbortController()
    abort.abort(new Error('cancelled by the test'))
    await expect(
      exportGguf({ model, tokenizerDir: FIXTURE_DIR, out: join(dir.path, 'cancelled.gguf'), type: 'f16', signal: abort.signal }),
    ).rejects.toThrow(/cancelled by the test/)
    expect((await readdir(dir.path)).filter((f) => f.startsWith('cancelled') || f.startsWith('x.gguf'))).toEqual([])
  })
})
