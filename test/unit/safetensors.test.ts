// The safetensors writer and header reader: the exact bytes of a small file worked out by hand,
// a round trip, and each malformed-file error.
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  encodeSafetensors,
  readSafetensorsHeader,
  readTensorBytes,
  SafetensorsError,
  writeSafetensors,
} from '../../src-main/core/safetensors.ts'
import { tempDir } from '../helpers/temp.ts'

let tmp: Awaited<ReturnType<typeof tempDir>>
beforeAll(async () => {
  tmp = await tempDir('longctx-st-')
})
afterAll(() => tmp.cleanup())

describe('encodeSafetensors', () => {
  it('writes the layout of the format, byte for byte', () => {
    const bytes = encodeSafetensors([{ name: 't', dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) }])
    const json = '{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    // 8 + 54 bytes of JSON, padded with 2 spaces to 64 so the data starts 8-byte aligned.
    expect(json.length).toBe(54)
    expect(bytes.readBigUInt64LE(0)).toBe(56n)
    expect(bytes.subarray(8, 64).toString('latin1')).toBe(json + '  ')
    // 1.0f = 0x3F800000, 2.0f = 0x40000000, little-endian.
    expect([...bytes.subarray(64)]).toEqual([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40])
    expect(bytes.length).toBe(72)
  })

  it('refuses data whose size does not match dtype x shape, and duplicate names', () => {
    expect(() => encodeSafetensors([{ name: 'a', dtype: 'F32', shape: [3], data: new Float32Array(2) }])).toThrow(/8 bytes of data for F32 \[3\], which needs 12/)
    expect(() =>
      encodeSafetensors([
        { name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array(1) },
        { name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array(1) },
      ]),
    ).toThrow(/used twice/)
  })
})

describe('reading back', () => {
  it('round-trips names, dtypes, shapes, metadata and data', async () => {
    const path = join(tmp.path, 'rt.safetensors')
    const w = Float32Array.from({ length: 6 }, (_, i) => i * 0.5 - 1)
    const bf16 = Uint16Array.of(0x3f80, 0xbf80, 0x4000)
    const ids = BigInt64Array.of(-1n, 2n ** 40n)
    await writeSafetensors(
      path,
      [
        { name: 'layer.weight', dtype: 'F32', shape: [2, 3], data: w },
        { name: 'half', dtype: 'BF16', shape: [3], data: bf16 },
        { name: 'ids', dtype: 'I64', shape: [2], data: ids },
        { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
      ],
      { format: 'pt' },
    )
    const header = await readSafetensorsHeader(path)
    expect(header.metadata).toEqual({ format: 'pt' })
    expect(header.dataStart % 8).toBe(0)
    expect(header.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([
      ['layer.weight', 'F32', [2, 3]],
      ['half', 'BF16', [3]],
      ['ids', 'I64', [2]],
      ['empty', 'F32', [0, 4]],
    ])
    const read = await readTensorBytes(path, header.tensors[0]!)
    expect(Array.from(new Float32Array(read.buffer, read.byteOffset, 6))).toEqual(Array.from(w))
    const half = await readTensorBytes(path, header.tensors[1]!)
    expect(Array.from(new Uint16Array(half.buffer, half.byteOffset, 3))).toEqual([0x3f80, 0xbf80, 0x4000])
    const back = await readTensorBytes(path, header.tensors[2]!)
    expect(Array.from(new BigInt64Array(back.slice().buffer))).toEqual([-1n, 2n ** 40n])
  })
})

describe('malformed files', () => {
  let n = 0
  async function fileWith(bytes: Buffer): Promise<string> {
    const path = join(tmp.path, `bad${n++}.safetensors`)
    await writeFile(path, bytes)
    return path
  }
  /** A file with this header JSON (unpadded) and `dataBytes` zero bytes of data. */
  function withHeader(header: unknown, dataBytes: number): Buffer {
    const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header))
    const len = Buffer.alloc(8)
    len.writeBigUInt64LE(BigInt(json.length))
    return Buffer.concat([len, json, Buffer.alloc(dataBytes)])
  }
  async function expectError(bytes: Buffer, message: RegExp): Promise<void> {
    const path = await fileWith(bytes)
    const err = await readSafetensorsHeader(path).then(
      () => null,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(SafetensorsError)
    expect((err as SafetensorsError).file).toBe(path)
    expect((err as SafetensorsError).message).toMatch(message)
  }
  const one = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }

  it('is fine when well formed (the cases below differ from this in one thing)', async () => {
    const header = await readSafetensorsHeader(await fileWith(withHeader(one, 8)))
    expect(header.tensors).toHaveLength(1)
  })

  it('names each problem', async () => {
    await expectError(Buffer.from([1, 2, 3]), /3 bytes is too short/)
    await expectError(withHeader(one, 8).subarray(0, 20), /header length 54 is larger than the rest of the file \(12 bytes\)/)
    await expectError(withHeader(one, 4), /truncated: the header describes 8 bytes of tensor data but the file has 4/)
    await expectError(withHeader(one, 12), /4 bytes after the last tensor/)
    await expectError(withHeader('{"t": ', 0), /the header is not valid JSON/)
    await expectError(withHeader([1], 0), /the header is not a JSON object/)
    await expectError(withHeader({ t: { ...one.t, dtype: 'F8_E4M3' } }, 8), /tensor "t": unsupported dtype "F8_E4M3"/)
    await expectError(withHeader({ t: { ...one.t, shape: [2.5] } }, 8), /tensor "t": shape must be an array of non-negative integers/)
    await expectError(withHeader({ t: { ...one.t, data_offsets: [8, 0] } }, 8), /data_offsets must be \[begin, end\]/)
    await expectError(withHeader({ t: { ...one.t, shape: [3] } }, 8), /tensor "t": 8 bytes for F32 \[3\], which needs 12/)
    await expectError(
      withHeader({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [4], data_offsets: [2, 6] } }, 6),
      /tensor "b" starts at data offset 2, expected 4 \(overlap or gap\)/,
    )
    await expectError(withHeader({ __metadata__: { a: 1 }, ...one }, 8), /__metadata__ must map strings to strings/)
  })

  it('says when the file cannot be opened', async () => {
    const missing = join(tmp.path, 'missing.safetensors')
    await expect(readSafetensorsHeader(missing)).rejects.toThrow(`${missing}: cannot be opened (ENOENT)`)
  })

  it('leaves no temporary file behind after an atomic write', async () => {
    const path = join(tmp.path, 'atomic.safetensors')
    await writeSafetensors(path, [{ name: 'x', dtype: 'U8', shape: [1], data: Uint8Array.of(7) }])
    const { readdir } = await import('node:fs/promises')
    expect((await readdir(tmp.path)).filter((f) => f.startsWith('atomic'))).toEqual(['atomic.safetensors'])
    expect([...(await readFile(path)).subarray(-1)]).toEqual([7])
  })
})
