// `longctx export` run as a user runs it (bin/longctx.js in a child process): a model folder to
// GGUF and HF, a checkpoint with --model and a model card from --card, and the clean failures.
import { spawn } from 'node:child_process'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EngineModel } from '../../src-main/engine/model.ts'
import { bytesEqual } from '../helpers/engine.ts'
import { tempDir } from '../helpers/temp.ts'
import { FIXTURE_DIR } from '../helpers/trained-tiny.ts'

const root = resolve(import.meta.dirname, '../..')
const bin = join(root, 'bin/longctx.js')

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, LONGCTX_DEBUG: '' } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', fail)
    child.on('close', (code) => done({ code, stdout, stderr }))
  })
}

let dir: Awaited<ReturnType<typeof tempDir>>
let checkpoint: string
let checkpointParams: Float32Array

beforeAll(async () => {
  dir = await tempDir('longctx-export-cli-')
  const m = await EngineModel.load(FIXTURE_DIR)
  await m.extendPositions(256, 'tile')
  checkpoint = join(dir.path, 'run-ckpt.safetensors')
  await m.saveCheckpoint(checkpoint)
  checkpointParams = await m.getParams()
  m.dispose()
})

afterAll(async () => {
  await dir?.cleanup()
})

describe('longctx export', () => {
  it('writes a GGUF into a folder and reports it', async () => {
    const r = await cli('export', FIXTURE_DIR, '--format', 'gguf', '--type', 'q8_0', '--out', join(dir.path, 'gguf') + '/')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^GGUF .*tiny-gpt2\.q8_0\.gguf: .*KiB, context 128 tokens/)
    expect(r.stderr).toMatch(/100% /) // progress, one line per 10% when not a terminal
    expect(await readdir(join(dir.path, 'gguf'))).toEqual(['tiny-gpt2.q8_0.gguf'])
  })

  it('exports a checkpoint (with --model) to an HF folder with the card from --card', async () => {
    const card = join(dir.path, 'card.json')
    await writeFile(card, JSON.stringify({ title: 'Tiny 256', perplexity: [{ window: 256, baseline: 20, value: 18.5 }] }))
    const out = join(dir.path, 'hf')
    const r = await cli('export', checkpoint, '--model', FIXTURE_DIR, '--format', 'hf', '--out', out, '--card', card)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/context 256 tokens/)
    const m = await EngineModel.load(out)
    expect(bytesEqual(await m.getParams(), checkpointParams)).toBe(true)
    m.dispose()
    expect(await readFile(join(out, 'README.md'), 'utf8')).toMatch(/# Tiny 256[\s\S]*\| 256 \| 20\.00 \| 18\.50 \| -7\.5% \|/)
  })

  it('fails cleanly: a checkpoint without --model, an unknown run, an existing output, a bad card', async () => {
    const noModel = await cli('export', checkpoint, '--format', 'gguf', '--out', join(dir.path, 'x.gguf'))
    expect(noModel.code).toBe(1)
    expect(noModel.stderr).toMatch(/^error: .*checkpoint \(step 0, 256 positions\).*--model DIR/)
    const unknown = await cli('export', 'no-such-run', '--format', 'gguf', '--out', join(dir.path, 'x.gguf'))
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toMatch(/^error: "no-such-run" is not a model folder, a checkpoint file or a known run/)
    const again = await cli('export', FIXTURE_DIR, '--format', 'hf', '--out', join(dir.path, 'hf'))
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/already exists and is not empty/)
    const badCard = join(dir.path, 'bad.json')
    await writeFile(badCard, JSON.stringify({ perplexity: [{ window: -1, value: 1 }] }))
    const bad = await cli('export', FIXTURE_DIR, '--format', 'hf', '--out', join(dir.path, 'hf2'), '--card', badCard)
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/--card .*perplexity\.0\.window/)
    const usage = await cli('export', FIXTURE_DIR, '--format', 'onnx', '--out', join(dir.path, 'y'))
    expect(usage.code).toBe(2)
    for (const r of [noModel, unknown, again, bad]) expect(r.stderr).not.toMatch(/\n\s+at /)
  })
})
