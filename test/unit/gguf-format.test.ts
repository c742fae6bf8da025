// Half-float conversion and Q8_0 blocks: the two encodings the GGUF export writes besides f32.
import { describe, expect, it } from 'vitest'
import {
  dequantizeQ8_0,
  f16BitsToF32,
  f32ToF16Bits,
  Q8_0_BLOCK_BYTES,
  quantizeQ8_0,
} from '../../src-main/core/export/gguf/format.ts'
import { randomIds } from '../helpers/engine.ts'

describe('f32 -> f16', () => {
  it('matches known bit patterns (IEEE round to nearest even)', () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.1, 0x2e66],
      [1 / 3, 0x3555],
      [65504, 0x7bff], // largest half
      [65519, 0x7bff], // rounds down
      [65520, 0x7c00], // halfway to 65536: ties to even = infinity
      [1e6, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // halfway to it: ties to even = 0
      [1.5 * 2 ** -25, 0x0001],
      [3 * 2 ** -25, 0x0002], // 1.5 subnormal units: ties to even = 2
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and 1+2^-10: even = 1
      [1 + 3 * 2 ** -11, 0x3c02], // halfway, odd below: rounds up
      [2 ** -14 - 2 ** -25, 0x0400], // subnormal rounding carries into the smallest normal
    ]
    for (const [x, bits] of cases) expect(f32ToF16Bits(x), `f16(${x})`).toBe(bits)
    expect(f32ToF16Bits(NaN) & 0x7c00).toBe(0x7c00)
    expect(f32ToF16Bits(NaN) & 0x3ff).not.toBe(0)
  })

  it('round-trips every half exactly and picks the nearest half for other values', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue // NaN payloads
      expect(f32ToF16Bits(f16BitsToF32(h))).toBe(h)
    }
    const ids = randomIds(4000, 1 << 30, 7)
    for (const r of ids) {
      const x = Math.fround((r / (1 << 30) - 0.5) * 2 ** ((r % 34) - 24)) // subnormals to 256
      const h = f32ToF16Bits(x)
      const y = f16BitsToF32(h)
      // neither neighbour of the chosen half is closer
      for (const n of [h - 1, h + 1]) {
        if ((n & 0x7fff) >= 0x7c00 || n < 0 || ((n ^ h) & 0x8000) !== 0) continue
        expect(Math.abs(f16BitsToF32(n) - x)).toBeGreaterThanOrEqual(Math.abs(y - x))
      }
    }
  })
})

describe('Q8_0', () => {
  it('stores fp16(max|x|/127) and roundf(x / d) per block of 32', () => {
    const x = new Float32Array(64)
    for (let i = 0; i < 32; i++) x[i] = (i - 16) / 4 // -4 .. 3.75: d = 4/127
    x[32 + 5] = -0.5 // one value: d = 0.5/127, q = -127
    const q = quantizeQ8_0(x)
    expect(q.length).toBe(2 * Q8_0_BLOCK_BYTES)
    const view = new DataView(q.buffer)
    expect(view.getUint16(0, true)).toBe(f32ToF16Bits(Math.fround(4 / 127)))
    expect(view.getInt8(2 + 0)).toBe(-127)
    expect(view.getInt8(2 + 16)).toBe(0)
    expect(view.getInt8(2 + 17)).toBe(Math.round(0.25 / (4 / 127))) // 7.94 -> 8
    expect(view.getInt8(2 + 31)).toBe(Math.round(3.75 / (4 / 127))) // 119.06 -> 119
    expect(view.getInt8(Q8_0_BLOCK_BYTES + 2 + 5)).toBe(-127)
    expect(view.getInt8(Q8_0_BLOCK_BYTES + 2 + 6)).toBe(0)
  })

  it('rounds halves away from zero like C roundf, and an all-zero block is all zeros', () => {
    const x = new Float32Array(32)
    x[0] = 127 // d = 1 exactly
    x[1] = 2.5
    x[2] = -2.5
    x[3] = -0.5
    const view = new DataView(quantizeQ8_0(x).buffer)
    expect([view.getInt8(3), view.getInt8(4), view.getInt8(5)]).toEqual([3, -3, -1])
    expect([...quantizeQ8_0(new Float32Array(32))].every((b) => b === 0)).toBe(true)
  })

  it('dequantizes within half a step of every value', () => {
    const ids = randomIds(32 * 50, 1 << 20, 3)
    const x = Float32Array.from(ids, (r, i) => ((r / (1 << 20)) - 0.5) * (1 + (i >> 5)))
    const back = dequantizeQ8_0(quantizeQ8_0(x), x.length)
    for (let b = 0; b < 50; b++) {
      let amax = 0
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!))
      const step = amax / 127
      for (let j = 0; j < 32; j++) expect(Math.abs(back[b * 32 + j]! - x[b * 32 + j]!)).toBeLessThanOrEqual(step * 0.5 + amax * 1e-3)
    }
  })

  it('refuses a length that is not whole blocks', () => {
    expect(() => quantizeQ8_0(new Float32Array(33))).toThrow(/multiple of 32/)
  })
})
