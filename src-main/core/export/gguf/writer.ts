// A streaming GGUF v3 writer. Metadata and tensor descriptions are declared first (their sizes
// are known from type and shape), then the header is written and each tensor's bytes are asked
// for one at a time, so a multi-GiB model never needs a second full copy in memory. The file is
// written under a temporary name and renamed into place, so a failed or cancelled export never
// leaves a truncated .gguf that a runtime might try to load.
import { open, rename, unlink } from 'node:fs/promises'
import {
  alignUp,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  GgmlType,
  GgufValueType,
  tensorBytes,
} from './format.ts'

export type GgufScalarType = Exclude<GgufValueType, GgufValueType.ARRAY>

export type GgufValue =
  | { type: GgufScalarType; value: number | bigint | boolean | string }
  | { type: GgufValueType.ARRAY; itemType: GgufScalarType; items: ReadonlyArray<number | bigint | boolean | string> }

export interface GgufTensorSpec {
  name: string
  // ggml order: ne[0] is the contiguous dimension (a [rows, cols] row-major matrix is [cols, rows])
  dims: readonly number[]
  type: GgmlType
  // Produces the tensor's bytes (exactly tensorBytes(type, elements) of them) when its turn comes.
  data: () => Uint8Array | Promise<Uint8Array>
}

export interface GgufWriteProgress {
  bytesWritten: number
  totalBytes: number
  tensor: string | null
}

export class GgufWriter {
  private readonly kv = new Map<string, GgufValue>()
  private readonly tensors: GgufTensorSpec[] = []
  readonly alignment: number

  constructor(alignment = GGUF_DEFAULT_ALIGNMENT) {
    if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0)
      throw new Error(`GGUF alignment must be a positive multiple of 8, got ${alignment}`)
    this.alignment = alignment
    // Readers take 32 when the key is absent; writing it anyway makes the file self-describing.
    this.set('general.alignment', { type: GgufValueType.UINT32, value: alignment })
  }

  set(key: string, value: GgufValue): this {
    this.kv.set(key, value)
    return this
  }
  string(key: string, value: string): this {
    return this.set(key, { type: GgufValueType.STRING, value })
  }
  u32(key: string, value: number): this {
    return this.set(key, { type: GgufValueType.UINT32, value })
  }
  i32(key: string, value: number): this {
    return this.set(key, { type: GgufValueType.INT32, value })
  }
  f32(key: string, value: number): this {
    return this.set(key, { type: GgufValueType.FLOAT32, value })
  }
  bool(key: string, value: boolean): this {
    return this.set(key, { type: GgufValueType.BOOL, value })
  }
  array(key: string, itemType: GgufScalarType, items: ReadonlyArray<number | bigint | boolean | string>): this {
    return this.set(key, { type: GgufValueType.ARRAY, itemType, items })
  }

  addTensor(spec: GgufTensorSpec): this {
    if (this.tensors.some((t) => t.name === spec.name)) throw new Error(`duplicate GGUF tensor name ${spec.name}`)
    if (Buffer.byteLength(spec.name) > 64) throw new Error(`GGUF tensor names are at most 64 bytes: ${spec.name}`)
    if (spec.dims.length < 1 || spec.dims.length > 4) throw new Error(`${spec.name}: GGUF tensors have 1 to 4 dimensions`)
    if (spec.type === GgmlType.Q8_0 && spec.dims[0]! % 32 !== 0)
      throw new Error(`${spec.name}: Q8_0 rows must be a multiple of 32 values, got ${spec.dims[0]}`)
    this.tensors.push(spec)
    return this
  }

  // Offsets (relative to the data section) and sizes, in declaration order.
  layout(): Array<{ name: string; dims: readonly number[]; type: GgmlType; offset: number; bytes: number }> {
    let offset = 0
    return this.tensors.map((t) => {
      const bytes = tensorBytes(t.type, t.dims.reduce((a, b) => a * b, 1))
      const entry = { name: t.name, dims: t.dims, type: t.type, offset, bytes }
      offset = alignUp(offset + bytes, this.alignment)
      return entry
    })
  }

  private encodeHeader(): Buffer {
    const parts: Buffer[] = []
    const u32 = (v: number) => {
      const b = Buffer.alloc(4)
      b.writeUInt32LE(v)
      parts.push(b)
    }
    const u64 = (v: number | bigint) => {
      const b = Buffer.alloc(8)
      b.writeBigUInt64LE(BigInt(v))
      parts.push(b)
    }
    const str = (s: string) => {
      const bytes = Buffer.from(s, 'utf8')
      u64(bytes.length)
      parts.push(bytes)
    }
    const scalar = (type: GgufScalarType, v: number | bigint | boolean | string, key: string) => {
      const b = Buffer.alloc(8)
      switch (type) {
        case GgufValueType.UINT8:
          b.writeUInt8(Number(v))
          return parts.push(b.subarray(0, 1))
        case GgufValueType.INT8:
          b.writeInt8(Number(v))
          return parts.push(b.subarray(0, 1))
        case GgufValueType.UINT16:
          b.writeUInt16LE(Number(v))
          return parts.push(b.subarray(0, 2))
        case GgufValueType.INT16:
          b.writeInt16LE(Number(v))
          return parts.push(b.subarray(0, 2))
        case GgufValueType.UINT32:
          b.writeUInt32LE(Number(v))
          return parts.push(b.subarray(0, 4))
        case GgufValueType.INT32:
          b.writeInt32LE(Number(v))
          return parts.push(b.subarray(0, 4))
        case GgufValueType.FLOAT32:
          b.writeFloatLE(Number(v))
          return parts.push(b.subarray(0, 4))
        case GgufValueType.BOOL:
          b.writeUInt8(v ? 1 : 0)
          return parts.push(b.subarray(0, 1))
        case GgufValueType.UINT64:
          b.writeBigUInt64LE(BigInt(v))
          return parts.push(b)
        case GgufValueType.INT64:
          b.writeBigInt64LE(BigInt(v))
          return parts.push(b)
        case GgufValueType.FLOAT64:
          b.writeDoubleLE(Number(v))
          return parts.push(b)
        case GgufValueType.STRING:
          if (typeof v !== 'string') throw new Error(`GGUF key ${key}: expected a string`)
          return str(v)
      }
    }

    u32(GGUF_MAGIC)
    u32(GGUF_VERSION)
    u64(this.tensors.length)
    u64(this.kv.size)
    for (const [key, value] of this.kv) {
      str(key)
      u32(value.type)
      if (value.type === GgufValueType.ARRAY) {
        u32(value.itemType)
        u64(value.items.length)
        for (const item of value.items) scalar(value.itemType, item, key)
      } else {
        scalar(value.type, value.value, key)
      }
    }
    for (const t of this.layout()) {
      str(t.name)
      u32(t.dims.length)
      for (const d of t.dims) u64(d)
      u32(t.type)
      u64(t.offset)
    }
    const header = Buffer.concat(parts)
    return Buffer.concat([header, Buffer.alloc(alignUp(header.length, this.alignment) - header.length)])
  }

  // Writes the file; resolves to its size in bytes. `signal` cancels between tensors.
  async write(path: string, opts: { onProgress?: (p: GgufWriteProgress) => void; signal?: AbortSignal } = {}): Promise<number> {
    const header = this.encodeHeader()
    const layout = this.layout()
    const dataBytes = layout.length ? alignUp(layout.at(-1)!.offset + layout.at(-1)!.bytes, this.alignment) : 0
    const totalBytes = header.length + dataBytes
    const tmp = `${path}.partial-${process.pid}`
    const fh = await open(tmp, 'w')
    let ok = false
    try {
      let pos = 0
      const put = async (bytes: Uint8Array) => {
        let done = 0
        while (done < bytes.length) {
          const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, pos + done)
          done += bytesWritten
        }
        pos += bytes.length
      }
      await put(header)
      opts.onProgress?.({ bytesWritten: pos, totalBytes, tensor: null })
      for (let i = 0; i < layout.length; i++) {
        if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('cancelled')
        const t = layout[i]!
        const bytes = await this.tensors[i]!.data()
        if (bytes.byteLength !== t.bytes)
          throw new Error(`GGUF tensor ${t.name}: produced ${bytes.byteLength} bytes, expected ${t.bytes}`)
        const want = header.length + t.offset
        if (pos < want) await put(new Uint8Array(want - pos))
        await put(bytes)
        opts.onProgress?.({ bytesWritten: pos, totalBytes, tensor: t.name })
      }
      // Tensor sizes are padded too, so the file length is a multiple of the alignment.
      const end = alignUp(pos - header.length, this.alignment) + header.length
      if (pos < end) await put(new Uint8Array(end - pos))
      await fh.sync()
      ok = true
      return pos
    } finally {
      await fh.close()
      if (ok) await rename(tmp, path)
      else await unlink(tmp).catch(() => undefined)
    }
  }
}
