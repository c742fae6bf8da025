// Small models and deterministic data for the engine tests (no fixture files needed).
import { readFile, writeFile } from 'node:fs/promises'
import { EngineModel, type ModelConfigInput } from '../../src-main/engine/model.ts'

export const TINY: ModelConfigInput = { vocabSize: 96, nPositions: 32, nEmbd: 32, nLayer: 2, nHead: 4 }

export function tinyModel(seed = 1, over: Partial<ModelConfigInput> = {}): Promise<EngineModel> {
  return EngineModel.create({ ...TINY, ...over }, seed)
}

// Deterministic pseudo-random ids (xorshift), so failures reproduce.
export function randomIds(n: number, vocab: number, seed = 1): Int32Array {
  let s = (seed * 2654435761) >>> 0 || 1
  const out = new Int32Array(n)
  for (let i = 0; i < n; i++) {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    out[i] = s % vocab
  }
  return out
}

// A (B, T) language-modelling batch: targets are the next ids of each row, -1 at the row end.
export function lmBatch(ids: Int32Array, B: number, T: number) {
  const tokens = ids.slice(0, B * T)
  const targets = new Int32Array(B * T)
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) targets[b * T + t] = t + 1 < T ? tokens[b * T + t + 1]! : -1
  return { tokens, targets, B, T }
}

export function bytesEqual(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m
}

export function argmax(a: ArrayLike<number>, from = 0, to = a.length): number {
  let best = from
  for (let i = from + 1; i < to; i++) if (a[i]! > a[best]!) best = i
  return best - from
}

// ---- safetensors editing, for the malformed-file tests ------------------------------------

export interface SafetensorsFile {
  header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>
  data: Buffer
}

export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  const buf = await readFile(path)
  const n = Number(buf.readBigUInt64LE(0))
  return { header: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')), data: buf.subarray(8 + n) }
}

export async function writeSafetensors(path: string, f: SafetensorsFile): Promise<void> {
  const json = Buffer.from(JSON.stringify(f.header), 'utf8')
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(json.length))
  await writeFile(path, Buffer.concat([len, json, f.data]))
}
