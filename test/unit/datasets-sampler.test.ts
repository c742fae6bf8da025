// The token store, the split, the statistics and the long/short sampler, on datasets written to a
// temp folder with the real writer. Token ids encode (document, position) so every window the
// sampler returns can be checked against where it claims to come from.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Prng } from '../../src-main/core/datasets/prng.ts'
import { countHeldOutWindows, DatasetSampler, heldOutWindows, type SamplerOptions } from '../../src-main/core/datasets/sampler.ts'
import { chooseHeldOut, computeStats, contextWarnings, DEFAULT_SPLIT } from '../../src-main/core/datasets/stats.ts'
import {
  DATASET_SCHEMA_VERSION,
  DatasetReader,
  DatasetWriter,
  MANIFEST_FILE,
  writeHeldOut,
  type DatasetManifest,
} from '../../src-main/core/datasets/store.ts'
import { tempDir } from '../helpers/temp.ts'

let dir: Awaited<ReturnType<typeof tempDir>>
beforeAll(async () => {
  dir = await tempDir('longctx-sampler-')
})
afterAll(async () => {
  await dir.cleanup()
})

const EOS = 999_999_999
/** Token id of position p in document d (uint32 datasets). */
const tok = (d: number, p: number) => d * 100_000 + p

let made = 0
async function makeDataset(
  lengths: number[],
  opts: { heldOut?: number[]; eos?: number | null; bytesPerToken?: 2 | 4; shardBytes?: number; tokenOf?: (d: number, p: number) => number } = {},
): Promise<DatasetReader> {
  const folder = join(dir.path, `ds${made++}`)
  await import('node:fs/promises').then((fs) => fs.mkdir(folder))
  const bpt = opts.bytesPerToken ?? 4
  const tokenOf = opts.tokenOf ?? tok
  const w = await DatasetWriter.create(folder, { bytesPerToken: bpt, shardBytes: opts.shardBytes })
  for (let d = 0; d < lengths.length; d++) {
    const ids = new Int32Array(lengths[d]!)
    for (let p = 0; p < ids.length; p++) ids[p] = tokenOf(d, p)
    // in two appends, like pieces of a long document
    await w.append(ids.subarray(0, ids.length >> 1))
    await w.append(ids.subarray(ids.length >> 1))
    await w.endDocument()
  }
  const files = await w.finish()
  const heldOut = Uint32Array.from(opts.heldOut ?? [])
  const heldFile = await writeHeldOut(folder, heldOut)
  const manifest: DatasetManifest = {
    schema: DATASET_SCHEMA_VERSION,
    kind: 'longctx-dataset',
    id: `test${made}`,
    name: 'synthetic',
    createdAt: new Date().toISOString(),
    source: { path: folder, format: 'jsonl', files: 1, bytes: 0, contentHash: '', textFields: null },
    options: {},
    tokenizer: { hash: 'h', kind: 'test', vocabSize: 2 ** 31, eosTokenId: opts.eos === undefined ? EOS : opts.eos, modelDir: '' },
    tokens: { dtype: bpt === 2 ? 'uint16' : 'uint32', count: w.totalTokens, written: files.written, shardTokens: w.shardTokens, shards: files.shards },
    documents: { ...files.documents, count: lengths.length, recordBytes: 16 },
    split: { ...heldFile, seed: 0, heldOutFraction: 0, minHeldOutDocuments: 0, maxHeldOutDocuments: 0, heldOutDocuments: heldOut.length },
    stats: computeStats(Uint32Array.from(lengths), heldOut),
    import: { seconds: 0, mbPerSec: 0, notes: [], workers: 1 },
  }
  await writeFile(join(folder, MANIFEST_FILE), JSON.stringify(manifest))
  return DatasetReader.open(folder)
}

describe('PRNG', () => {
  it('is deterministic per seed, resumable from its state, and uniform', () => {
    const a = Prng.fromSeed(42)
    const b = Prng.fromSeed(42)
    const seqA = Array.from({ length: 100 }, () => a.nextU32())
    expect(Array.from({ length: 100 }, () => b.nextU32())).toEqual(seqA)
    expect(Prng.fromSeed(43).nextU32()).not.toBe(seqA[0])
    const saved = JSON.parse(JSON.stringify(a.state()))
    const next = Array.from({ length: 10 }, () => a.nextFloat())
    const resumed = Prng.fromState(saved)
    expect(Array.from({ length: 10 }, () => resumed.nextFloat())).toEqual(next)
    const counts = new Array(10).fill(0)
    const r = Prng.fromSeed(7)
    for (let i = 0; i < 100_000; i++) counts[r.nextInt(10)]++
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500) // > 5 sigma
  })
})

describe('train / held-out split', () => {
  it('is seeded, by document, sized by fraction within bounds', () => {
    const a = chooseHeldOut(1000, { ...DEFAULT_SPLIT, seed: 1 })
    expect(a.length).toBe(20)
    expect(Array.from(a)).toEqual(Array.from(chooseHeldOut(1000, { ...DEFAULT_SPLIT, seed: 1 })))
    expect(Array.from(a)).not.toEqual(Array.from(chooseHeldOut(1000, { ...DEFAULT_SPLIT, seed: 2 })))
    expect(new Set(a).size).toBe(20)
    expect(Array.from(a)).toEqual([...a].sort((x, y) => x - y))
    expect(chooseHeldOut(10, DEFAULT_SPLIT).length).toBe(1) // at least 1
    expect(chooseHeldOut(1_000_000, DEFAULT_SPLIT).length).toBe(2000) // capped
  })

  it('says clearly when the dataset is too small to split', () => {
    expect(() => chooseHeldOut(1, DEFAULT_SPLIT)).toThrow(
      /has 1 document, too few to set 1 aside for perplexity and keep 1 for training \(at least 2 needed\).*--separator/,
    )
    expect(() => chooseHeldOut(5, { ...DEFAULT_SPLIT, minHeldOutDocuments: 5 })).toThrow(/has 5 documents, too few/)
  })
})

describe('statistics', () => {
  it('buckets lengths on log-spaced boundaries and counts what is long enough', () => {
    const lengths = Uint32Array.from([10, 255, 256, 511, 512, 2047, 2048, 4096, 8191, 8192, 16384, 40000, 9000])
    const s = computeStats(lengths, Uint32Array.from([12])) // the 9000-token document is held out
    expect(s.lengthHistogram.map((b) => [b.label, b.documents])).toEqual([
      ['<256', 2],
      ['256-512', 2],
      ['512-1k', 1],
      ['1k-2k', 1],
      ['2k-4k', 1],
      ['4k-8k', 2],
      ['8k-16k', 1],
      ['>=16k', 2],
    ])
    expect(s.documents).toBe(12)
    expect(s.heldOut).toEqual({ documents: 1, tokens: 9000, windows: { '2048': 4, '4096': 2, '8192': 1, '16384': 0 } })
    expect(s.atLeast['8192']).toEqual({ documents: 3, tokens: 8192 + 16384 + 40000 })
    expect(s.atLeast['16384']).toEqual({ documents: 2, tokens: 16384 + 40000 })
    expect(s.total.tokens).toBe(lengths.reduce((a, b) => a + b, 0))
    expect(s.longestDocumentTokens).toBe(40000)
    // Three documents >= 8k cannot teach 8k: the warning says so with the numbers.
    expect(contextWarnings(s, 8192).join(' ')).toMatch(/Only 3 training documents are at least 8k tokens long/)
    const plenty = computeStats(new Uint32Array(200).fill(20000), Uint32Array.from([0, 1, 2, 3]))
    expect(contextWarnings(plenty, 8192)).toEqual([])
  })
})

describe('token store', () => {
  it('reads windows across shard boundaries, in uint16 and uint32', async () => {
    for (const bpt of [2, 4] as const) {
      const tokenOf = (d: number, p: number) => (d * 1000 + p) % 65_000
      const r = await makeDataset([37, 5, 100, 64], { bytesPerToken: bpt, shardBytes: 16 * bpt, tokenOf })
      expect(r.manifest.tokens.shards.length).toBe(Math.ceil(206 / 16))
      const out = new Int32Array(100)
      await r.readDocument(2, 0, 100, out)
      expect(Array.from(out)).toEqual(Array.from({ length: 100 }, (_, p) => tokenOf(2, p)))
      await r.readDocument(0, 30, 7, out)
      expect(Array.from(out.subarray(0, 7))).toEqual([30, 31, 32, 33, 34, 35, 36])
      await expect(r.readDocument(1, 3, 5, out)).rejects.toThrow(/outside its 5 tokens/)
      await r.close()
    }
  })
})

describe('sampler', () => {
  const T = 512
  const base = 128
  // 40 documents: half long enough for T, half short; 2 held out.
  const lengths = Array.from({ length: 40 }, (_, i) => (i % 2 ? 50 + i * 3 : 600 + i * 97))
  const opts: SamplerOptions = { contextLength: T, baseContext: base, seed: 7 }
  let reader: DatasetReader
  beforeAll(async () => {
    reader = await makeDataset(lengths, { heldOut: [1, 2] })
  })
  afterAll(async () => {
    await reader.close()
  })

  /** Decodes (doc, pos) from a token id and checks the row is a true window of the documents. */
  function checkWindow(tokens: Int32Array, targets: Int32Array, from: number, to: number): { doc: number; start: number } {
    const doc = Math.floor(tokens[from]! / 100_000)
    const start = tokens[from]! % 100_000
    let bad = -1 // one expect per window: thousands of them per token would dominate the test time
    for (let i = from; i < to && bad < 0; i++) {
      const nextPos = start + i - from + 1
      if (tokens[i] !== tok(doc, start + i - from) || targets[i] !== (nextPos < lengths[doc]! ? tok(doc, nextPos) : EOS)) bad = i
    }
    expect(bad).toBe(-1)
    return { doc, start }
  }

  it('draws long with probability 0.6 over 10,000 examples and reports the ratio by examples and tokens', async () => {
    const s = DatasetSampler.create(reader, opts)
    for (let i = 0; i < 10_000; i++) await s.next()
    const r = s.ratio()
    expect(r.examples.long + r.examples.short).toBe(10_000)
    expect(Math.abs(r.longFractionByExamples - 0.6)).toBeLessThan(0.02) // ~4 sigma
    // Short rows hold at most `base` scored tokens, long rows T: by tokens long dominates.
    expect(r.scoredTokens.long).toBe(r.examples.long * T)
    expect(r.longFractionByTokens).toBeGreaterThan(0.8)
    console.log(`sampler over 10,000 draws: long ${r.examples.long} / short ${r.examples.short} = ${r.longFractionByExamples.toFixed(4)} by examples, ${r.longFractionByTokens.toFixed(4)} by scored tokens`)
  })

  it('long examples are T tokens of one training document at least T long; short ones at most base, padded', async () => {
    const s = DatasetSampler.create(reader, opts)
    const held = new Set(reader.heldOut)
    const starts = new Set<number>()
    for (let i = 0; i < 400; i++) {
      const ex = await s.next()
      expect(ex.tokens.length).toBe(T)
      expect(ex.segments).toBeUndefined()
      if (ex.kind === 'long') {
        expect(ex.validLength).toBe(T)
        const { doc, start } = checkWindow(ex.tokens, ex.targets, 0, T)
        expect(lengths[doc]).toBeGreaterThanOrEqual(T)
        expect(start + T).toBeLessThanOrEqual(lengths[doc]!)
        expect(held.has(doc)).toBe(false)
        starts.add(start)
      } else {
        expect(ex.validLength).toBeLessThanOrEqual(base)
        const { doc } = checkWindow(ex.tokens, ex.targets, 0, Math.min(ex.validLength, lengths[Math.floor(ex.tokens[0]! / 100_000)]!))
        expect(held.has(doc)).toBe(false)
        // padding: end-of-text ids, never scored
        expect(ex.targets.subarray(ex.validLength).every((t) => t === -1)).toBe(true)
        expect(ex.tokens.subarray(ex.validLength).every((t) => t === EOS)).toBe(true)
      }
    }
    expect(starts.size).toBeGreaterThan(100) // random offsets, not always 0
  })

  it('is deterministic per seed and resumes exactly from a saved state', async () => {
    const run = async (s: DatasetSampler, n: number) => {
      const out: number[] = []
      for (let i = 0; i < n; i++) {
        const ex = await s.next()
        out.push(ex.kind === 'long' ? 1 : 0, ex.tokens[0]!, ex.tokens[T - 1]!, ex.validLength)
      }
      return out
    }
    const original = DatasetSampler.create(reader, opts)
    const full = await run(original, 300)
    expect(await run(DatasetSampler.create(reader, opts), 300)).toEqual(full)
    expect(await run(DatasetSampler.create(reader, { ...opts, seed: 8 }), 300)).not.toEqual(full)

    const first = DatasetSampler.create(reader, opts)
    const head = await run(first, 120)
    const saved = JSON.parse(JSON.stringify(first.state()))
    const resumed = DatasetSampler.create(reader, opts, saved)
    const tail = await run(resumed, 180)
    expect([...head, ...tail]).toEqual(full)
    expect(resumed.ratio()).toEqual(original.ratio())
    expect(resumed.ratio().examples.long + resumed.ratio().examples.short).toBe(300)
    expect(() => DatasetSampler.create(reader, { ...opts, pLong: 0.5 }, saved)).toThrow(/another dataset or other sampler settings/)
  })

  it('packs documents with segment ids; end-of-text is not scored', async () => {
    const s = DatasetSampler.create(reader, { ...opts, longMode: 'pack', shortMode: 'pack', pLong: 0.5 })
    for (let i = 0; i < 50; i++) {
      const ex = await s.next()
      expect(ex.segments).toBeDefined()
      expect(ex.validLength).toBe(T)
      const seg = ex.segments!
      let start = 0
      for (let k = 1; k <= T; k++) {
        if (k === T || seg[k] !== seg[k - 1]) {
          // one segment: a window of one document's stream (tokens, then end-of-text)
          const len = k - start
          if (ex.kind === 'short') expect(len).toBeLessThanOrEqual(base)
          const realEnd = ex.tokens[k - 1] === EOS ? k - 1 : k
          if (realEnd > start) checkWindow(ex.tokens, ex.targets, start, realEnd - 1)
          if (realEnd < k) expect(ex.targets[k - 1]).toBe(-1)
          if (k < T) expect(seg[k]).toBe(seg[k - 1]! + 1)
          start = k
        }
      }
    }
  })

  it('builds (B,T) batches', async () => {
    const s = DatasetSampler.create(reader, opts)
    const b = await s.nextBatch(4)
    expect(b.tokens.length).toBe(4 * T)
    expect(b.kinds.length).toBe(4)
    const again = DatasetSampler.create(reader, opts)
    const first = await again.next()
    expect(Array.from(b.tokens.subarray(0, T))).toEqual(Array.from(first.tokens))
  })

  it('explains when no document is long enough for the stage', async () => {
    expect(() => DatasetSampler.create(reader, { ...opts, contextLength: 10_000 })).toThrow(
      /No training document is at least 10000 tokens long \(the longest has 4286\).*long mode "pack"/,
    )
  })

  it('cuts held-out documents into consecutive non-overlapping windows', async () => {
    expect(countHeldOutWindows(reader, 100)).toBe(Math.floor(lengths[1]! / 100) + Math.floor(lengths[2]! / 100))
    const wins = []
    for await (const w of heldOutWindows(reader, 100)) wins.push(w)
    expect(wins.length).toBe(countHeldOutWindows(reader, 100))
    const w0 = wins[0]!
    expect(w0.document).toBe(2) // document 1 (53 tokens) is shorter than a window
    expect(Array.from(w0.tokens.subarray(0, 3))).toEqual([tok(2, 0), tok(2, 1), tok(2, 2)])
    expect(w0.targets[98]).toBe(tok(2, 99))
    expect(w0.targets[99]).toBe(-1)
    expect(wins[1]!.offset).toBe(100)
  })
})
