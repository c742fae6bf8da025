// A small seeded PRNG (xoshiro128**, seeded through splitmix32) whose whole state is four uint32s,
// so a sampler or a split can be saved to JSON and resumed bit-exactly. Math.random cannot be
// seeded, and the data order must be identical across runs, machines and resumes.

export type PrngState = [number, number, number, number]

function splitmix32(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
}

export class Prng {
  private a: number
  private b: number
  private c: number
  private d: number

  private constructor(state: PrngState) {
    ;[this.a, this.b, this.c, this.d] = state
    // The all-zero state is the one fixed point of xoshiro; never enter it.
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1
  }

  /** A generator for `seed`; `stream` gives independent sequences from one seed (split vs sampler). */
  static fromSeed(seed: number, stream = 0): Prng {
    const mix = splitmix32((Math.trunc(seed) ^ Math.imul(stream + 1, 0x27d4eb2d)) >>> 0)
    // Also fold in the high part of seeds above 2^32 so they do not collide with small ones.
    const high = Math.floor(Math.abs(seed) / 2 ** 32) >>> 0
    return new Prng([mix() ^ high, mix(), mix(), mix()])
  }

  static fromState(state: readonly number[]): Prng {
    if (state.length !== 4 || state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
      throw new Error('invalid PRNG state: expected four uint32 values')
    }
    return new Prng([state[0]!, state[1]!, state[2]!, state[3]!])
  }

  state(): PrngState {
    return [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0]
  }

  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5) >>> 0, 7), 9) >>> 0
    const t = (this.b << 9) >>> 0
    this.c ^= this.a
    this.d ^= this.b
    this.b ^= this.c
    this.a ^= this.d
    this.c ^= t
    this.d = rotl(this.d >>> 0, 11)
    this.a >>>= 0
    this.b >>>= 0
    this.c >>>= 0
    return result
  }

  /** Uniform in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const hi = this.nextU32() >>> 5 // 27 bits
    const lo = this.nextU32() >>> 6 // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992
  }

  /** Uniform integer in [0, n); n up to 2^53. The bias for huge n is below 2^-20, irrelevant here. */
  nextInt(n: number): number {
    if (!(n >= 1)) throw new Error(`nextInt needs n >= 1, got ${n}`)
    if (n <= 0x100000000) {
      // Rejection sampling keeps small ranges exactly uniform.
      const limit = 0x100000000 - (0x100000000 % n)
      for (;;) {
        const x = this.nextU32()
        if (x < limit) return x % n
      }
    }
    return Math.floor(this.nextFloat() * n)
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0
}

/** Fisher-Yates over a copy; deterministic for a given PRNG state. */
export function shuffled<T>(items: readonly T[], rng: Prng): T[] {
  const out = items.slice()
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1)
    const tmp = out[i]!
    out[i] = out[j]!
    out[j] = tmp
  }
  return out
}
