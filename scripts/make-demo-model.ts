// Makes resources/demo/: the app's embedded demo model, pretrained from scratch WITH THIS ENGINE
// on the bundled public-domain corpus (resources/corpus, the King James Bible).
//
//   npx tsx scripts/make-demo-model.ts [--steps 300] [--threads 0] [--out resources/demo]
//
// - Tokenizer: a byte-level BPE of 2048 tokens (1791 merges + 256 bytes + <|endoftext|> = 2047)
//   trained on the corpus by src-main/core/tokenizer/train-bpe.ts (what scripts/train-bpe.ts
//   runs). Not the fixture's 512 tokens: 2048 packs 3.5 bytes of text per token against 2.3,
//   so the same compute reads 50 % more text, and chapters still reach 1024 tokens (509 of them)
//   for the demo's 256 -> 512 -> 1024 stages.
// - Model: GPT-2 layout, n_positions 256, 4 layers x 128 wide, 4 heads (1.1M parameters, 4.3 MB
//   in F32), GPT-2 initialisation from a fixed seed.
// - Training: AdamW (beta2 0.95, weight decay 0.1, clip 1), lr 2e-3 with 20 warmup steps and a
//   cosine to 10 %, batches of 8 x 256 tokens cut at random offsets from the training chapters
//   (each followed by <|endoftext|>). The chapters the dataset import holds out for perplexity
//   (its default split: seed 1234, 2 %) are left out here too, so the demo's baseline perplexity
//   is measured on text the model never saw.
// - Output: config.json + model.safetensors (F32), vocab.json, merges.txt, tokenizer.json, and
//   pretraining.json (steps, time, losses, held-out perplexity) for the README.
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Prng } from '../src-main/core/datasets/prng.ts'
import { chooseHeldOut, DEFAULT_SPLIT } from '../src-main/core/datasets/stats.ts'
import { loadTokenizer } from '../src-main/core/tokenizer/index.ts'
import { bpeToFiles, trainByteLevelBpe } from '../src-main/core/tokenizer/train-bpe.ts'
import { learningRateAt } from '../src-main/core/runs/schedule.ts'
import { EngineModel } from '../src-main/engine/model.ts'
import { loadNative } from '../src-main/engine/native.ts'
import { perplexityPerWindow } from '../src-main/engine/perplexity.ts'
import { DEFAULT_CORPUS, REPO_ROOT, readDocuments } from './corpus.ts'

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '300' },
    threads: { type: 'string', default: '0' },
    out: { type: 'string', default: join(REPO_ROOT, 'resources/demo') },
    batch: { type: 'string', default: '8' },
  },
})
const STEPS = Number(values.steps)
const B = Number(values.batch)
const T = 256
const SEED = 20251122
const MERGES = 1791
const LR = { peak: 2e-3, warmupSteps: 20, minRatio: 0.1 }

async function main(): Promise<void> {
  const started = performance.now()
  const out = values.out!
  mkdirSync(out, { recursive: true })
  loadNative().setNumThreads(Number(values.threads))

  const docs = readDocuments(DEFAULT_CORPUS)
  const bpe = trainByteLevelBpe(docs, { merges: MERGES, minFrequency: 2 })
  for (const [name, text] of Object.entries(bpeToFiles(bpe))) writeFileSync(join(out, name), text)
  const tok = await loadTokenizer(out)
  const eos = tok.eosTokenId!
  const V = bpe.tokens.length
  console.log(`tokenizer: ${V} tokens, <|endoftext|> = ${eos}`)

  // The import's held-out chapters (same split) stay unseen.
  const held = new Set(chooseHeldOut(docs.length, DEFAULT_SPLIT))
  const train: number[] = []
  const heldOut: number[] = []
  docs.forEach((d, i) => {
    const ids = Array.from(tok.encode(d))
    ;(held.has(i) ? heldOut : train).push(...ids, eos)
  })
  const stream = Int32Array.from(train)
  console.log(`corpus: ${docs.length - held.size} training chapters (${stream.length} tokens), ${held.size} held out (${heldOut.length} tokens)`)

  const model = await EngineModel.create({ vocabSize: V, nPositions: T, nEmbd: 128, nLayer: 4, nHead: 4 }, SEED)
  console.log(`model: ${model.paramCount} parameters, ${loadNative().getNumThreads()} threads on ${os.cpus()[0]?.model.trim()}`)
  await model.trainInit({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1, seed: SEED })

  const rng = Prng.fromSeed(SEED, 3)
  const tokens = new Int32Array(B * T)
  const targets = new Int32Array(B * T)
  const losses: number[] = []
  let ema = 0
  const trainStart = performance.now()
  for (let step = 1; step <= STEPS; step++) {
    for (let b = 0; b < B; b++) {
      const at = rng.nextInt(stream.length - T - 1)
      tokens.set(stream.subarray(at, at + T), b * T)
      targets.set(stream.subarray(at + 1, at + T + 1), b * T)
    }
    await model.zeroGrad()
    const loss = await model.forwardBackward({ tokens, targets, B, T })
    await model.optimizerStep(learningRateAt(LR, STEPS, step))
    losses.push(loss)
    ema = step === 1 ? loss : 0.95 * ema + 0.05 * loss
    if (step % 20 === 0 || step === STEPS) {
      const s = (performance.now() - trainStart) / 1000
      console.log(`step ${step}/${STEPS}  loss ${loss.toFixed(3)} (ema ${ema.toFixed(3)})  ${((step * B * T) / s).toFixed(0)} tok/s  ${s.toFixed(0)} s`)
    }
  }
  const trainSeconds = (performance.now() - trainStart) / 1000
  const ppl = await perplexityPerWindow(model, heldOut, T, { batchTokens: 8 * T })
  console.log(`held-out perplexity at ${T}: ${ppl.ppl.toFixed(2)} (NLL ${ppl.nll.toFixed(3)} over ${ppl.predictions} predictions)`)
  await model.save(out)
  model.dispose()

  const last = losses.slice(-20)
  const info = {
    steps: STEPS,
    batch: [B, T],
    tokens: STEPS * B * T,
    learningRate: LR,
    seed: SEED,
    threads: loadNative().getNumThreads(),
    cpu: os.cpus()[0]?.model.trim(),
    trainSeconds: Math.round(trainSeconds),
    totalSeconds: Math.round((performance.now() - started) / 1000),
    firstLoss: losses[0],
    finalLossMean20: last.reduce((a, b) => a + b, 0) / last.length,
    heldOut: { window: T, ppl: ppl.ppl, nll: ppl.nll, predictions: ppl.predictions },
  }
  writeFileSync(join(out, 'pretraining.json'), JSON.stringify(info, null, 2) + '\n')
  console.log(`wrote ${out} in ${info.totalSeconds} s`)
}

await main()
