// GGUF v3 constants and the two element encodings this app writes besides f32: IEEE half floats
// and ggml's Q8_0 blocks. Written from the GGUF spec (ggml docs/gguf.md) and ggml's reference
// quantizer semantics; everything is little-endian.
//
// File layout (what writer.ts produces):
//   u32 magic "GGUF", u32 version 3, u64 tensor_count, u64 metadata_kv_count
//   metadata: { string key, u32 value_type, value }*      string = u64 byte length + UTF-8 bytes
//   tensor infos: { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }*
//   zero padding to general.alignment, then each tensor's bytes at its offset (relative to the
//   start of this data section), each offset a multiple of the alignment.
// ne[0] is the innermost (contiguous) dimension: a PyTorch [out, in] matrix is ne = [in, out].

export const GGUF_MAGIC = 0x46554747 // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3
export const GGUF_DEFAULT_ALIGNMENT = 32

export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

// The ggml tensor types this writer produces (the enum has many more; the numbers are ggml's).
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q8_0 = 8,
}

// llama.cpp's llama_ftype values for general.file_type: what most of the weights are stored as.
export enum LlamaFileType {
  ALL_F32 = 0,
  MOSTLY_F16 = 1,
  MOSTLY_Q8_0 = 7,
}

// Tokenizer token types (llama.cpp's llama_token_type / gguf-py TokenType).
export enum GgufTokenType {
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

export const Q8_0_BLOCK = 32 // elements per block
export const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK // fp16 scale + 32 int8

// Bytes of a tensor with `elements` values of a type (Q8_0 needs whole blocks).
export function tensorBytes(type: GgmlType, elements: number): number {
  switch (type) {
    case GgmlType.F32:
      return elements * 4
    case GgmlType.F16:
      return elements * 2
    case GgmlType.Q8_0:
      if (elements % Q8_0_BLOCK !== 0) throw new Error(`Q8_0 needs a multiple of ${Q8_0_BLOCK} elements, got ${elements}`)
      return (elements / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES
  }
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment
}

// ---- half floats ---------------------------------------------------------------------------

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

// IEEE 754 binary32 -> binary16 bits, round to nearest even, with subnormals, overflow to
// infinity and NaN kept NaN: the same result as a hardware conversion (and as ggml's
// GGML_FP32_TO_FP16 on x86 with F16C), so files match what ggml itself would write.
export function f32ToF16Bits(value: number): number {
  f32[0] = value
  const x = u32[0]!
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0) // Inf / NaN (quiet)
  // Unbiased exponent, rebased for half: half exp = exp - 127 + 15.
  let e = exp - 112
  if (e >= 0x1f) return sign | 0x7c00 // too large: infinity
  if (e <= 0) {
    // A half subnormal (or zero): shift the mantissa with its implicit 1 into place.
    if (e < -10) return sign // below half the smallest subnormal: signed zero
    mant |= 0x800000
    const shift = 14 - e
    const half = 1 << (shift - 1)
    let h = mant >>> shift
    const rest = mant & ((1 << shift) - 1)
    if (rest > half || (rest === half && (h & 1) === 1)) h++
    return sign | h // a carry into the exponent field is the right answer (smallest normal)
  }
  let h = (e << 10) | (mant >>> 13)
  const rest = mant & 0x1fff
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++ // may carry into exp: still right
  return sign | h
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >>> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 0x1f) return mant ? NaN : sign * Infinity
  return sign * (1 + mant / 1024) * 2 ** (exp - 15)
}

// Float32 values -> their half-float bits (little-endian bytes through the Uint16Array view).
export function toF16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length)
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i]!)
  return out
}

// ---- Q8_0 ----------------------------------------------------------------------------------

// C's roundf: halves go away from zero (Math.round sends -2.5 to -2).
function roundHalfAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5)
}

// ggml's reference Q8_0 quantizer: per block of 32, d = max|x| / 127 (in f32), q = roundf(x / d),
// stored as fp16(d) followed by the 32 int8 q. Dequantized value = fp16(d) * q.
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  const blocks = values.length / Q8_0_BLOCK
  if (!Number.isInteger(blocks)) throw new Error(`Q8_0 needs a multiple of ${Q8_0_BLOCK} values, got ${values.length}`)
  const out = new Uint8Array(blocks * Q8_0_BLOCK_BYTES)
  const view = new DataView(out.buffer)
  for (let b = 0; b < blocks; b++) {
    const base = b * Q8_0_BLOCK
    let amax = 0
    for (let j = 0; j < Q8_0_BLOCK; j++) amax = Math.max(amax, Math.abs(values[base + j]!))
    // The scale is computed in f32 like ggml does, so the same inputs give the same bytes.
    const d = Math.fround(amax / 127)
    const id = d !== 0 ? Math.fround(1 / d) : 0
    const at = b * Q8_0_BLOCK_BYTES
    view.setUint16(at, f32ToF16Bits(d), true)
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const q = roundHalfAway(Math.fround(values[base + j]! * id))
      view.setInt8(at + 2 + j, Math.max(-128, Math.min(127, q)))
    }
  }
  return out
}

export function dequantizeQ8_0(bytes: Uint8Array, elements: number): Float32Array {
  const out = new Float32Array(elements)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let b = 0; b < elements / Q8_0_BLOCK; b++) {
    const at = b * Q8_0_BLOCK_BYTES
    const d = f16BitsToF32(view.getUint16(at, true))
    for (let j = 0; j < Q8_0_BLOCK; j++) out[b * Q8_0_BLOCK + j] = d * view.getInt8(at + 2 + j)
  }
  return out
}
