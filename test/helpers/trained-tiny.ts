// The tiny-gpt2 fixture trained for a few hundred steps on the KJV corpus, saved as a model folder
// with its tokenizer. The fixture's random weights give nearly flat next-token distributions; a
// trained model gives peaked ones (like a real model), which is what log-probability agreement
// tests and readable chat transcripts need. Deterministic for a seed; a few seconds on the CPU.
import { readFileSync } from 'node:fs'
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { EngineModel } from '../../src-main/engine/model.ts'
import { loadTokenizer } from '../../src-main/core/tokenizer/index.ts'

export const FIXTURE_DIR = join(import.meta.dirname, '../fixtures/tiny-gpt2')
const CORPUS = join(import.meta.dirname, '../../resources/corpus/kjv-chapters.jsonl')

// The first chapters of the public-domain KJV corpus the app ships.
export function corpusText(chapters = 40): string {
  const lines = readFileSync(CORPUS, 'utf8').split('\n').filter(Boolean).slice(0, chapters)
  return lines.map((l) => (JSON.parse(l) as { text: string }).text).join('\n')
}

export async function corpusIds(chapters = 40, tokenizerDir = FIXTURE_DIR): Promise<Int32Array> {
  return (await loadTokenizer(tokenizerDir)).encode(corpusText(chapters))
}

export async function trainTinyModel(out: string, opts: { steps?: number; seed?: number } = {}): Promise<string> {
  const ids = await corpusIds()
  const model = await EngineModel.load(FIXTURE_DIR)
  try {
    await model.trainInit({ seed: opts.seed ?? 1 })
    const B = 8
    const T = 64
    for (let step = 0; step < (opts.steps ?? 200); step++) {
      const tokens = new Int32Array(B * T)
      const targets = new Int32Array(B * T)
      for (let b = 0; b < B; b++) {
        const off = ((step * B + b) * 97 * T) % (ids.length - T - 1)
        for (let t = 0; t < T; t++) {
          tokens[b * T + t] = ids[off + t]!
          targets[b * T + t] = ids[off + t + 1]!
        }
      }
      await model.zeroGrad()
      await model.forwardBackward({ tokens, targets, B, T })
      await model.optimizerStep(3e-3)
    }
    await model.save(out)
    for (const f of ['tokenizer.json', 'vocab.json', 'merges.txt']) await copyFile(join(FIXTURE_DIR, f), join(out, f))
    return out
  } finally {
    model.dispose()
  }
}
