// CPU training throughput through the addon: tokens/s of full steps (zero_grad + forward +
// backward + clip + AdamW) for the fixture model, at a few batch shapes, with the step time
// split into forward+backward and optimizer.
//
//   npm run bench:cpu                      fixture model, all cores
//   npm run bench:cpu -- --model DIR       another model folder
//   npm run bench:cpu -- --threads 1 --seconds 5
import { existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { EngineModel } from '../../src-main/engine/model.ts'
import { loadNative } from '../../src-main/engine/native.ts'

const root = path.resolve(import.meta.dirname, '../..')
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: path.join(root, 'test/fixtures/tiny-gpt2') },
    threads: { type: 'string', default: '0' },
    seconds: { type: 'string', default: '3' }, // measuring time per shape
  },
})

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

function ids(n: number, vocab: number, seed: number): Int32Array {
  let s = seed >>> 0 || 1
  return Int32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s % vocab
  })
}

async function main(): Promise<void> {
  const native = loadNative()
  native.setNumThreads(Number(values.threads))
  if (!existsSync(path.join(values.model!, 'config.json'))) throw new Error(`no model at ${values.model}; run scripts/make-fixture-model.ts or pass --model DIR`)
  const model = await EngineModel.load(values.model!, { backend: 'cpu' })
  const c = model.config
  await model.trainInit({ weightDecay: 0.1, gradClip: 1 })
  const seconds = Number(values.seconds)

  console.log(`model      ${path.relative(root, values.model!) || values.model}: ${c.nLayer} layers, ${c.nHead} heads, width ${c.nEmbd}, ` +
    `vocab ${c.vocabSize}, context ${c.nPositions}, ${(model.paramCount / 1e6).toFixed(2)}M params`)
  console.log(`cpu        ${os.cpus()[0]?.model.trim()} — engine threads ${native.getNumThreads()} (of ${os.availableParallelism()} cores)`)
  console.log('')

  const shapes: Array<[number, number]> = []
  for (const T of [64, 128, 256, 512]) if (T <= c.nPositions) for (const B of [1, 4, 16]) shapes.push([B, T])
  if (shapes.length === 0) shapes.push([1, c.nPositions])

  const rows: string[][] = [['B', 'T', 'tokens/step', 'step ms', 'zero+fwd+bwd ms', 'adamw ms', 'tokens/s']]
  let best = 0
  for (const [B, T] of shapes) {
    const all = ids(B * (T + 1), c.vocabSize, B * 1000 + T)
    const tokens = new Int32Array(B * T)
    const targets = new Int32Array(B * T)
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) {
        tokens[b * T + t] = all[b * (T + 1) + t]!
        targets[b * T + t] = all[b * (T + 1) + t + 1]!
      }
    const batch = { tokens, targets, B, T }
    const step = async () => {
      const t0 = performance.now()
      await model.zeroGrad()
      await model.forwardBackward(batch)
      const t1 = performance.now()
      await model.optimizerStep(1e-4)
      const t2 = performance.now()
      return { total: t2 - t0, fb: t1 - t0, opt: t2 - t1 }
    }
    for (let i = 0; i < 2; i++) await step() // warm caches and allocations
    const times: Array<{ total: number; fb: number; opt: number }> = []
    const until = performance.now() + seconds * 1000
    while (performance.now() < until || times.length < 3) times.push(await step())
    const stepMs = median(times.map((t) => t.total))
    const tps = (B * T) / (stepMs / 1000)
    best = Math.max(best, tps)
    rows.push([B, T, B * T, stepMs.toFixed(2), median(times.map((t) => t.fb)).toFixed(2), median(times.map((t) => t.opt)).toFixed(2), Math.round(tps).toLocaleString('en-US')].map(String))
  }
  model.dispose()

  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  for (const [k, r] of rows.entries()) {
    console.log(r.map((cell, i) => cell.padStart(widths[i]!)).join('  '))
    if (k === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  }
  console.log('')
  console.log(`CPU training: ${Math.round(best).toLocaleString('en-US')} tokens/s (best shape, median step, forward+backward+AdamW)`)
}

main().catch((e) => {
  console.error(`error: ${(e as Error).message}`)
  process.exit(1)
})
