// A small safetensors writer and header reader (https://github.com/huggingface/safetensors format):
//   8 bytes   little-endian u64 N, the header length
//   N bytes   JSON header: {"__metadata__": {str: str}, name: {dtype, shape, data_offsets: [begin, end]}}
//             (padded with spaces so that the data starts 8-byte aligned, as HF's writer does)
//   the rest  tensor bytes, little-endian, offsets relative to the end of the header
// The reader checks what HF's loader checks (offsets contiguous, sizes matching dtype x shape,
// nothing past the end), so a truncated or hand-edited file is refused with the file named.

import { open, rename, writeFile, unlink } from 'node:fs/promises'

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL'

export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
}

export interface TensorToWrite {
  name: string
  dtype: SafetensorsDtype
  shape: readonly number[]
  /** Little-endian element bytes, e.g. a Float32Array for F32 or a Uint16Array for BF16. */
  data: ArrayBufferView
}

export interface TensorInfo {
  name: string
  dtype: SafetensorsDtype
  shape: number[]
  /** Absolute byte range of the tensor in the file. */
  begin: number
  end: number
}

export interface SafetensorsHeader {
  /** Where tensor data starts in the file (8 + header length). */
  dataStart: number
  metadata: Record<string, string>
  /** In file order. */
  tensors: TensorInfo[]
}

/** A safetensors file that cannot be used; `file` is its path, `reason` what is wrong. */
export class SafetensorsError extends Error {
  readonly file: string
  readonly reason: string

  constructor(file: string, reason: string) {
    super(`${file}: ${reason}`)
    this.name = 'SafetensorsError'
    this.file = file
    this.reason = reason
  }
}

/** Headers above this are refused before reading them (HF's limit is 100 MB too). */
const MAX_HEADER_BYTES = 100_000_000

const numel = (shape: readonly number[]): number => shape.reduce((n, d) => n * d, 1)

/** The whole file as bytes. Tensor order in the file is the order given. */
export function encodeSafetensors(tensors: readonly TensorToWrite[], metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = {}
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata
  let offset = 0
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name in header) throw new Error(`tensor name ${JSON.stringify(t.name)} is used twice or reserved`)
    if (!t.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`${t.name}: bad shape [${t.shape.join(', ')}]`)
    const bytes = numel(t.shape) * DTYPE_BYTES[t.dtype]
    if (t.data.byteLength !== bytes) {
      throw new Error(`${t.name}: ${t.data.byteLength} bytes of data for ${t.dtype} [${t.shape.join(', ')}], which needs ${bytes}`)
    }
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] }
    offset += bytes
  }
  let json = JSON.stringify(header)
  const jsonBytes = Buffer.byteLength(json)
  json += ' '.repeat((8 - ((8 + jsonBytes) % 8)) % 8)
  const headerLength = Buffer.byteLength(json)

  const out = Buffer.alloc(8 + headerLength + offset)
  out.writeBigUInt64LE(BigInt(headerLength), 0)
  out.write(json, 8, 'utf8')
  let at = 8 + headerLength
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at)
    at += t.data.byteLength
  }
  return out
}

/** Writes the file atomically (temporary file, then rename), so a crash never leaves half a file. */
export async function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata: Record<string, string> = {}): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`
  try {
    await writeFile(tmp, encodeSafetensors(tensors, metadata), { flush: true })
    await rename(tmp, path)
  } catch (e) {
    await unlink(tmp).catch(() => undefined)
    throw e
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Parses and checks a header. `headerJson` is the N header bytes; `fileBytes` the size of the whole
 * file; `file` names it in errors.
 */
export function parseSafetensorsHeader(file: string, headerJson: Uint8Array, fileBytes: number): SafetensorsHeader {
  let parsed: unknown
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerJson))
  } catch (e) {
    throw new SafetensorsError(file, `the header is not valid JSON (${(e as Error).message})`)
  }
  if (!isRecord(parsed)) throw new SafetensorsError(file, 'the header is not a JSON object')
  const dataStart = 8 + headerJson.length
  const dataBytes = fileBytes - dataStart

  const metadata: Record<string, string> = {}
  const tensors: TensorInfo[] = []
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === '__metadata__') {
      if (!isRecord(entry) || !Object.values(entry).every((v) => typeof v === 'string')) {
        throw new SafetensorsError(file, '__metadata__ must map strings to strings')
      }
      Object.assign(metadata, entry)
      continue
    }
    if (!isRecord(entry)) throw new SafetensorsError(file, `tensor ${JSON.stringify(name)}: entry is not an object`)
    const { dtype, shape, data_offsets: offsets } = entry
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
      throw new SafetensorsError(file, `tensor ${JSON.stringify(name)}: unsupported dtype ${JSON.stringify(dtype)}`)
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(file, `tensor ${JSON.stringify(name)}: shape must be an array of non-negative integers`)
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      throw new SafetensorsError(file, `tensor ${JSON.stringify(name)}: data_offsets must be [begin, end] with 0 <= begin <= end`)
    }
    const need = numel(shape as number[]) * DTYPE_BYTES[dtype as SafetensorsDtype]
    if (offsets[1] - offsets[0] !== need) {
      throw new SafetensorsError(
        file,
        `tensor ${JSON.stringify(name)}: ${offsets[1] - offsets[0]} bytes for ${dtype} [${(shape as number[]).join(', ')}], which needs ${need}`,
      )
    }
    tensors.push({ name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin: dataStart + offsets[0], end: dataStart + offsets[1] })
  }

  // As in HF's loader: the tensors tile the data area exactly, without gaps or overlaps.
  const byOffset = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end)
  let expected = dataStart
  for (const t of byOffset) {
    if (t.begin !== expected) {
      throw new SafetensorsError(file, `tensor ${JSON.stringify(t.name)} starts at data offset ${t.begin - dataStart}, expected ${expected - dataStart} (overlap or gap)`)
    }
    expected = t.end
  }
  if (expected - dataStart !== dataBytes) {
    throw new SafetensorsError(
      file,
      expected - dataStart > dataBytes
        ? `truncated: the header describes ${expected - dataStart} bytes of tensor data but the file has ${Math.max(0, dataBytes)}`
        : `${dataBytes - (expected - dataStart)} bytes after the last tensor that no tensor describes`,
    )
  }
  tensors.sort((a, b) => a.begin - b.begin)
  return { dataStart, metadata, tensors }
}

/** Reads and checks only the header of a file (the tensor data is not read). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  let handle
  try {
    handle = await open(path, 'r')
  } catch (e) {
    throw new SafetensorsError(path, `cannot be opened (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`)
  }
  try {
    const { size } = await handle.stat()
    if (size < 8) throw new SafetensorsError(path, `${size} bytes is too short for a safetensors file (8-byte header length missing)`)
    const lengthBytes = Buffer.alloc(8)
    await handle.read(lengthBytes, 0, 8, 0)
    const headerLength = lengthBytes.readBigUInt64LE(0)
    if (headerLength > BigInt(size - 8)) {
      throw new SafetensorsError(path, `header length ${headerLength} is larger than the rest of the file (${size - 8} bytes): not a safetensors file, or truncated`)
    }
    if (headerLength > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(path, `header length ${headerLength} is over the ${MAX_HEADER_BYTES}-byte limit`)
    const header = Buffer.alloc(Number(headerLength))
    await handle.read(header, 0, header.length, 8)
    return parseSafetensorsHeader(path, header, size)
  } finally {
    await handle.close()
  }
}

/** Reads one tensor's bytes (a copy); `info` comes from readSafetensorsHeader of the same file. */
export async function readTensorBytes(path: string, info: TensorInfo): Promise<Uint8Array> {
  const handle = await open(path, 'r')
  try {
    const out = new Uint8Array(info.end - info.begin)
    const { bytesRead } = await handle.read(out, 0, out.length, info.begin)
    if (bytesRead !== out.length) throw new SafetensorsError(path, `tensor ${JSON.stringify(info.name)}: file ended after ${bytesRead} of ${out.length} bytes`)
    return out
  } finally {
    await handle.close()
  }
}
