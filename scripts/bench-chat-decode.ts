// Decode speed of the two chat backends on the same model and prompt: the native engine
// (EngineModel.generator, KV cache) and node-llama-cpp on the model's GGUF export (f16 and q8_0,
// in the GGUF host child process, as the app runs it). Greedy decoding, a fixed prompt length;
// reports tokens/s after the first token (the decode rate) and the prefill time.
//
//   npx tsx scripts/bench-chat-decode.ts [--model DIR | --synthetic 768x12] [--prompt-tokens N]
//        [--new-tokens N] [--backend cpu|cuda] [--gpu auto|cpu] [--threads 1,0]
//
// Without --model it trains the tiny test fixture for a few seconds first (the random fixture
// would decode at the same speed, but its text is noise). --synthetic WIDTHxLAYERS makes a
// randomly initialised GPT-2 of that shape (1024 positions, the fixture's tokenizer) to time a
// model of real size without downloading one. --threads lists the thread counts to
// try for both (0 = the backend's default: all cores for the engine, llama.cpp's math cores).
// On the GPU machine (node carried in): --model /path/to/rugpt3xl --prompt-tokens 8000
// --backend cuda --gpu auto. Machines differ: compare backends within one run, as ratios.
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { GgufHost } from '../src-main/core/chat/gguf-client.ts'
import { exportGguf } from '../src-main/core/export/gguf/export-gguf.ts'
import { EngineModel } from '../src-main/engine/model.ts'
import { loadNative } from '../src-main/engine/native.ts'
import { corpusIds, FIXTURE_DIR, trainTinyModel } from '../test/helpers/trained-tiny.ts'

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    synthetic: { type: 'string' },
    'prompt-tokens': { type: 'string', default: '64' },
    'new-tokens': { type: 'string', default: '60' },
    backend: { type: 'string', default: 'cpu' },
    gpu: { type: 'string', default: 'cpu' },
    threads: { type: 'string', default: '1,0' },
  },
})

const work = await mkdtemp(join(tmpdir(), 'longctx-bench-'))
try {
  let modelDir = values.model
  if (!modelDir && values.synthetic) {
    const [width, layers] = values.synthetic.split('x').map(Number)
    const m = await EngineModel.create({ vocabSize: 512, nPositions: 1024, nEmbd: width!, nLayer: layers!, nHead: Math.max(1, width! / 64) }, 1)
    modelDir = join(work, 'synthetic')
    await m.save(modelDir)
    m.dispose()
    for (const f of ['tokenizer.json', 'vocab.json', 'merges.txt']) await copyFile(join(FIXTURE_DIR, f), join(modelDir, f))
  }
  modelDir ??= await trainTinyModel(join(work, 'tiny'), { steps: 150 })
  const backend = values.backend === 'cuda' ? 'cuda' : 'cpu'
  const model = await EngineModel.load(modelDir, { backend })
  const cfg = model.config
  const promptTokens = Math.min(Number(values['prompt-tokens']), cfg.nPositions - 2)
  const newTokens = Math.min(Number(values['new-tokens']), cfg.nPositions - promptTokens)
  // Real text for the prompt: the corpus through the model's own tokenizer, repeated as needed.
  let ids = Array.from(await corpusIds(Math.ceil(promptTokens / 500) + 2, modelDir))
  while (ids.length < promptTokens) ids = ids.concat(ids)
  const prompt = ids.slice(0, promptTokens)
  const threads = values.threads!.split(',').map(Number)
  console.log(
    `model ${modelDir}: ${cfg.nLayer} layers, width ${cfg.nEmbd}, ${cfg.nPositions} positions, ${model.paramCount} params; ` +
      `prompt ${promptTokens} tokens, ${newTokens} new tokens, greedy`,
  )
  const rows: Array<{ backend: string; threads: string; prefillMs: number; tokensPerSec: number }> = []

  for (const t of threads) {
    if (backend === 'cpu') loadNative().setNumThreads(t)
    const gen = await model.generator(promptTokens + newTokens)
    // one warm-up pass, then the measured one
    for (let pass = 0; pass < 2; pass++) {
      await gen.reset()
      const t0 = performance.now()
      await gen.feed(prompt)
      const t1 = performance.now()
      await gen.next({ temperature: 0 })
      const t2 = performance.now()
      for (let i = 1; i < newTokens; i++) await gen.next({ temperature: 0 })
      const t3 = performance.now()
      if (pass === 1)
        rows.push({
          backend: `engine ${backend}`,
          threads: backend === 'cpu' ? String(loadNative().getNumThreads()) : '-',
          prefillMs: t1 - t0,
          tokensPerSec: ((newTokens - 1) * 1000) / (t3 - t2),
        })
    }
    gen.dispose()
    if (backend !== 'cpu') break
  }

  for (const type of ['f16', 'q8_0'] as const) {
    const path = join(work, `model.${type}.gguf`)
    await exportGguf({ model, tokenizerDir: modelDir, out: path, type })
    for (const t of threads) {
      const host = await GgufHost.start({ path, gpu: values.gpu === 'auto' ? 'auto' : false, ...(t > 0 ? { threads: t } : {}) })
      try {
        const sampling = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 1 }
        let result = null
        let prefillMs = 0
        for (let pass = 0; pass < 2; pass++) {
          // a different first token each pass, so the cached prefix is not reused
          const p = pass === 0 ? prompt : [prompt[1]!, ...prompt.slice(1)]
          const t0 = performance.now()
          let first = 0
          const run = host.generate(p, sampling, newTokens, () => {
            if (!first) first = performance.now()
          }, false)
          result = await run.done
          prefillMs = first - t0
        }
        rows.push({
          backend: `llama.cpp ${type} (${host.loaded.gpu === false ? 'cpu' : host.loaded.gpu})`,
          threads: t > 0 ? String(t) : 'default',
          prefillMs,
          tokensPerSec: ((result!.generated - 1) * 1000) / result!.decodeMs,
        })
      } finally {
        await host.dispose()
      }
    }
  }
  model.dispose()
  console.log('\n| backend | threads | prefill + first token ms | decode tokens/s |\n| --- | --- | --- | --- |')
  for (const r of rows) console.log(`| ${r.backend} | ${r.threads} | ${r.prefillMs.toFixed(1)} | ${r.tokensPerSec.toFixed(0)} |`)
} finally {
  await rm(work, { recursive: true, force: true })
}
