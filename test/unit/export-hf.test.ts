// The Hugging Face folder export: reloading it with the engine gives bit-identical parameters
// (one file and sharded), the tokenizer files come along, the model card carries the plan and the
// perplexity table, checkpoints of an extended model export with their new context, and export
// sources and jobs behave.
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ExportProgress } from '../../src-main/api/contract.ts'
import { runExport } from '../../src-main/core/export/run-export.ts'
import { ExportService } from '../../src-main/core/export/service.ts'
import { registerExportSourceResolver, resolveExportSource } from '../../src-main/core/export/source.ts'
import { readCheckpointInfo } from '../../src-main/core/model-source.ts'
import { EngineModel } from '../../src-main/engine/model.ts'
import { bytesEqual, lmBatch, randomIds } from '../helpers/engine.ts'
import { tempDir } from '../helpers/temp.ts'
import { FIXTURE_DIR } from '../helpers/trained-tiny.ts'

let dir: Awaited<ReturnType<typeof tempDir>>
let fixtureParams: Float32Array
let checkpoint: string
let checkpointParams: Float32Array

beforeAll(async () => {
  dir = await tempDir('longctx-export-')
  const m = await EngineModel.load(FIXTURE_DIR)
  fixtureParams = await m.getParams()
  // A stage-2-like checkpoint: 128 -> 256 positions, one training step, so every tensor moved.
  await m.extendPositions(256, 'tile')
  await m.trainInit({ seed: 2 })
  await m.zeroGrad()
  await m.forwardBackward(lmBatch(randomIds(2 * 200, 512, 4), 2, 200))
  await m.optimizerStep(1e-3)
  checkpoint = join(dir.path, 'ckpt-step1.safetensors')
  await m.saveCheckpoint(checkpoint)
  checkpointParams = await m.getParams()
  m.dispose()
})

afterAll(async () => {
  await dir?.cleanup()
})

async function reloadParams(folder: string): Promise<{ params: Float32Array; nPositions: number }> {
  const m = await EngineModel.load(folder)
  try {
    return { params: await m.getParams(), nPositions: m.config.nPositions }
  } finally {
    m.dispose()
  }
}

describe('HF folder export', () => {
  it('reloads bit-identically, with the tokenizer files and a model card', async () => {
    const out = join(dir.path, 'hf-model')
    const phases: string[] = []
    const r = await runExport({ source: { kind: 'model', path: FIXTURE_DIR }, format: 'hf', out, onProgress: (p) => phases.push(p) })
    expect(r.format).toBe('hf')
    expect(r.files).toEqual(['README.md', 'config.json', 'merges.txt', 'model.safetensors', 'tokenizer.json', 'vocab.json'])
    expect((await readdir(out)).sort()).toEqual(r.files)
    expect(phases[0]).toBe('loading')
    expect(phases.at(-1)).toBe('writing')
    const back = await reloadParams(out)
    expect(bytesEqual(back.params, fixtureParams)).toBe(true)
    for (const f of ['tokenizer.json', 'vocab.json', 'merges.txt'])
      expect((await readFile(join(out, f))).equals(await readFile(join(FIXTURE_DIR, f))), f).toBe(true)
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'))
    expect(config.n_positions).toBe(128)
    expect(config.architectures).toEqual(['GPT2LMHeadModel'])
    expect(await readFile(join(out, 'README.md'), 'utf8')).toMatch(/GPT2LMHeadModel with a context of 128 tokens/)
    // no leftovers of the temporary folder
    expect((await readdir(dir.path)).filter((f) => f.includes('.partial-'))).toEqual([])
  })

  it('shards above maxShardBytes (with the index) and still reloads bit-identically', async () => {
    const out = join(dir.path, 'hf-sharded')
    const r = await runExport({ source: { kind: 'model', path: FIXTURE_DIR }, format: 'hf', out, maxShardBytes: 200_000 })
    const shards = r.files.filter((f) => f.endsWith('.safetensors'))
    expect(shards.length).toBeGreaterThan(1)
    expect(r.files).toContain('model.safetensors.index.json')
    const back = await reloadParams(out)
    expect(bytesEqual(back.params, fixtureParams)).toBe(true)
  })

  it('exports a checkpoint of an extended model with its new context, plan and perplexity table', async () => {
    const out = join(dir.path, 'hf-ckpt')
    // a tokenizer_config.json naming the old context follows the new one
    const modelDir = join(dir.path, 'base-with-tokcfg')
    await mkdir(modelDir)
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.json', 'merges.txt'])
      await writeFile(join(modelDir, f), await readFile(join(FIXTURE_DIR, f)))
    await writeFile(join(modelDir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 128, tokenizer_class: 'GPT2Tokenizer' }))
    const r = await runExport({
      source: { kind: 'checkpoint', modelDir, checkpoint },
      format: 'hf',
      out,
      card: {
        title: 'Tiny GPT-2, 256 tokens',
        baseModel: 'tiny-gpt2',
        plan: { stages: [{ name: '256', context: 256, steps: 1, learningRate: 1e-3 }], positionInit: 'tile', longFraction: 0.6 },
        perplexity: [
          { window: 128, baseline: 11.68, value: 11.77 },
          { window: 256, baseline: null, value: 11.99 },
        ],
      },
    })
    expect(r.contextLength).toBe(256)
    const back = await reloadParams(out)
    expect(back.nPositions).toBe(256)
    expect(bytesEqual(back.params, checkpointParams)).toBe(true)
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'))
    expect([config.n_positions, config.n_ctx]).toEqual([256, 256])
    expect(JSON.parse(await readFile(join(out, 'tokenizer_config.json'), 'utf8')).model_max_length).toBe(256)
    const card = await readFile(join(out, 'README.md'), 'utf8')
    expect(card).toMatch(/^# Tiny GPT-2, 256 tokens$/m)
    expect(card).toMatch(/extended from 128 to 256 tokens/)
    expect(card).toMatch(/base_model: tiny-gpt2/)
    expect(card).toMatch(/\| 256 \| 256 \| 1 \| — \| 1\.0e-3 \|/)
    expect(card).toMatch(/60% long \/ 40% short/)
    expect(card).toMatch(/\| 128 \| 11\.68 \| 11\.77 \| \+0\.8% \|/)
    expect(card).toMatch(/\| 256 \| — \| 11\.99 \| — \|/)
    expect(card).toMatch(/From checkpoint \| step 1/)
  })

  it('refuses to replace a non-empty folder unless told to', async () => {
    const out = join(dir.path, 'taken')
    await mkdir(out)
    await writeFile(join(out, 'keep.txt'), 'mine')
    await expect(runExport({ source: { kind: 'model', path: FIXTURE_DIR }, format: 'hf', out })).rejects.toMatchObject({ code: 'busy' })
    expect(await readFile(join(out, 'keep.txt'), 'utf8')).toBe('mine')
    await runExport({ source: { kind: 'model', path: FIXTURE_DIR }, format: 'hf', out, overwrite: true })
    expect(await readdir(out)).not.toContain('keep.txt')
  })

  it('a checkpoint exported to GGUF keeps its 256 positions', async () => {
    const r = await runExport({ source: { kind: 'checkpoint', modelDir: FIXTURE_DIR, checkpoint }, format: 'gguf', type: 'f16', out: join(dir.path, 'gguf') + '/' })
    expect(r.path).toBe(join(dir.path, 'gguf', 'ckpt-step1.f16.gguf'))
    expect(r.contextLength).toBe(256)
    const buf = await readFile(r.path)
    expect(buf.toString('latin1', 0, 4)).toBe('GGUF')
  })
})

describe('export sources', () => {
  it('resolves folders, checkpoint files (with --model) and registered run ids', async () => {
    expect(await resolveExportSource(FIXTURE_DIR)).toEqual({ kind: 'model', path: FIXTURE_DIR })
    await expect(resolveExportSource(checkpoint)).rejects.toThrow(/checkpoint \(step 1, 256 positions\).*--model DIR/)
    expect(await resolveExportSource(checkpoint, { model: FIXTURE_DIR })).toEqual({ kind: 'checkpoint', modelDir: FIXTURE_DIR, checkpoint })
    await expect(resolveExportSource(join(FIXTURE_DIR, 'merges.txt'))).rejects.toMatchObject({ code: 'bad_input' })
    await expect(resolveExportSource('run-42')).rejects.toMatchObject({ code: 'not_found' })
    const unregister = registerExportSourceResolver(async (arg) =>
      arg === 'run-42' ? { kind: 'checkpoint', modelDir: FIXTURE_DIR, checkpoint } : null,
    )
    try {
      expect(await resolveExportSource('run-42')).toEqual({ kind: 'checkpoint', modelDir: FIXTURE_DIR, checkpoint })
    } finally {
      unregister()
    }
    const info = await readCheckpointInfo(checkpoint)
    expect([info.step, info.nPositions, info.attention]).toEqual([1, 256, ['dense', 'dense']])
  })
})

describe('export jobs', () => {
  it('runs in the background with progress events and a final result; failures are reported', async () => {
    const events: ExportProgress[] = []
    const service = new ExportService({ emit: (p) => events.push(p) })
    const { jobId } = service.start({
      source: { kind: 'model', path: FIXTURE_DIR },
      format: 'gguf',
      type: 'q8_0',
      out: join(dir.path, 'job.gguf'),
      overwrite: false,
    })
    const job = await service.wait(jobId)
    expect(job?.progress).toMatchObject({ phase: 'done', done: true, fraction: 1 })
    expect(job?.progress.result?.path).toBe(join(dir.path, 'job.gguf'))
    expect(events.at(-1)?.done).toBe(true)
    expect(events.every((e) => e.jobId === jobId)).toBe(true)
    expect(service.list().map((j) => j.jobId)).toContain(jobId)

    const bad = service.start({ source: { kind: 'model', path: join(dir.path, 'nope') }, format: 'hf', type: 'f16', out: join(dir.path, 'x'), overwrite: false })
    const failed = await service.wait(bad.jobId)
    expect(failed?.progress.phase).toBe('failed')
    expect(failed?.progress.error?.code).toBe('not_found')
    await service.dispose()
  })
})
