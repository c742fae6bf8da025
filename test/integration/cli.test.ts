// The `longctx` command line, run as a user runs it (bin/longctx.js in a child process), against
// the committed fixture model and results recomputed here through the engine directly.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadTokenizer } from '../../src-main/core/tokenizer/index.ts'
import { EngineModel } from '../../src-main/engine/model.ts'
import { cutWindows } from '../../src-main/engine/perplexity.ts'
import { tempDir } from '../helpers/temp.ts'

const root = resolve(import.meta.dirname, '../..')
const fixture = join(root, 'test/fixtures/tiny-gpt2')
const bin = join(root, 'bin/longctx.js')

interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

function cli(...args: string[]): Promise<CliResult> {
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

// An expected failure: non-zero, one `error:` line first, never a stack trace.
function expectCleanFailure(r: CliResult, code: number, message: RegExp): void {
  expect(r.code, r.stderr).toBe(code)
  expect(r.stderr).toMatch(/^error: /)
  expect(r.stderr).toMatch(message)
  expect(r.stderr).not.toMatch(/\n\s+at /)
}

const TEXT =
  'The quick brown fox jumps over the lazy dog. Long context models read whole books at once, ' +
  'and perplexity tells how surprised a model is by each next word.\n'

let tmp: Awaited<ReturnType<typeof tempDir>>
let textFile: string

beforeAll(async () => {
  expect(existsSync(join(fixture, 'config.json')), `fixture model missing at ${fixture}`).toBe(true)
  tmp = await tempDir('longctx-cli-')
  textFile = join(tmp.path, 'text.txt')
  await writeFile(textFile, TEXT.repeat(6))
})
afterAll(() => tmp?.cleanup())

describe('longctx inspect', () => {
  it('--json has the model step fields', async () => {
    const r = await cli('inspect', fixture, '--json')
    expect(r.code, r.stderr).toBe(0)
    const info = JSON.parse(r.stdout)
    const model = await EngineModel.load(fixture)
    const c = model.config
    model.dispose()
    expect(info).toMatchObject({
      architecture: 'GPT2LMHeadModel',
      family: 'gpt2',
      layers: c.nLayer,
      heads: c.nHead,
      width: c.nEmbd,
      contextLength: c.nPositions,
      vocabSize: c.vocabSize,
      attention: c.attention,
      tokenizer: { kind: expect.any(String), files: expect.any(Array) },
    })
    expect(info.parameters).toBeGreaterThan(0)
    expect(info.attention).toHaveLength(c.nLayer)
    expect(info.sizeOnDiskBytes).toBeGreaterThan(0)
  })

  it('prints a readable summary', async () => {
    const r = await cli('inspect', fixture)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/architecture\s+GPT2LMHeadModel/)
    expect(r.stdout).toMatch(/tokenizer\s+(tokenizer\.json|vocab\.json\+merges\.txt)/)
  })
})

describe('longctx score', () => {
  it('--json equals the PPL recomputed from forward() NLLs with the windowing rule', async () => {
    const tokenizer = await loadTokenizer(fixture)
    const ids = tokenizer.encode(await readFile(textFile, 'utf8'))
    const model = await EngineModel.load(fixture)
    const window = Math.min(16, model.config.nPositions)
    // Make the last window shorter, to cover the tail rule.
    expect(ids.length % window).toBeGreaterThanOrEqual(2)
    let sum = 0
    let predictions = 0
    let windows = 0
    try {
      // One window per forward call here (the CLI batches them): a different path to the answer.
      for (let start = 0; start < ids.length; start += window) {
        const w = ids.subarray(start, Math.min(start + window, ids.length))
        if (w.length < 2) continue
        const targets = Int32Array.from(w, (_, t) => (t + 1 < w.length ? w[t + 1]! : -1))
        const { nll } = await model.forward({ tokens: w, targets, B: 1, T: w.length }, { nll: true })
        for (let t = 0; t + 1 < w.length; t++) sum += nll![t]!
        predictions += w.length - 1
        windows++
      }
    } finally {
      model.dispose()
    }
    const r = await cli('score', fixture, textFile, '--window', String(window), '--json', '--backend', 'cpu', '--batch-tokens', '64')
    expect(r.code, r.stderr).toBe(0)
    const got = JSON.parse(r.stdout)
    expect(got.tokens).toBe(ids.length)
    expect(got.windows).toBe(windows)
    expect(got.windows).toBe(cutWindows(ids.length, window).length)
    expect(got.predictions).toBe(predictions)
    expect(got.nll).toBeCloseTo(sum / predictions, 5)
    expect(got.ppl).toBeCloseTo(Math.exp(sum / predictions), 4)
  })

  it('refuses a window longer than the context', async () => {
    const r = await cli('score', fixture, textFile, '--window', '100000')
    expectCleanFailure(r, 1, /context/)
  })
})

describe('longctx generate', () => {
  it('temperature 0 is deterministic and equals the engine greedy output', async () => {
    const prompt = 'The quick brown'
    const args = ['generate', fixture, '--prompt', prompt, '--max-tokens', '12', '--temperature', '0', '--backend', 'cpu']
    const [a, b] = [await cli(...args), await cli(...args)]
    expect(a.code, a.stderr).toBe(0)
    expect(b.stdout).toBe(a.stdout)

    const tokenizer = await loadTokenizer(fixture)
    const model = await EngineModel.load(fixture)
    let text = ''
    try {
      for await (const piece of model.generate(tokenizer, prompt, { maxTokens: 12, temperature: 0 })) text += piece
    } finally {
      model.dispose()
    }
    expect(a.stdout).toBe(text.endsWith('\n') ? text : text + '\n')
  })
})

describe('longctx extend', () => {
  it('writes a loadable model with the new n_positions and the tokenizer files', async () => {
    const info = JSON.parse((await cli('inspect', fixture, '--json')).stdout)
    const to = info.contextLength * 2
    const out = join(tmp.path, 'extended')
    const r = await cli('extend', fixture, '--to', String(to), '--out', out)
    expect(r.code, r.stderr).toBe(0)
    const files = await readdir(out)
    expect(files).toEqual(expect.arrayContaining(['config.json', ...info.tokenizer.files]))
    const model = await EngineModel.load(out)
    try {
      expect(model.config.nPositions).toBe(to)
    } finally {
      model.dispose()
    }
    const again = JSON.parse((await cli('inspect', out, '--json')).stdout)
    expect(again.contextLength).toBe(to)
    expect(again.tokenizer).toEqual(info.tokenizer)
    // Refuses to overwrite a folder with files in it.
    expectCleanFailure(await cli('extend', fixture, '--to', String(to), '--out', out), 1, /not empty/)
  })
})

describe('errors', () => {
  it('a missing folder, a folder without a model and a broken model exit 1 with a message', async () => {
    expectCleanFailure(await cli('inspect', join(tmp.path, 'missing')), 1, /no such folder/)
    const empty = join(tmp.path, 'empty')
    await mkdir(empty, { recursive: true })
    expectCleanFailure(await cli('inspect', empty), 1, /config\.json/)
    const broken = join(tmp.path, 'broken')
    await mkdir(broken, { recursive: true })
    await writeFile(join(broken, 'config.json'), '{"architectures": ["GPT2LMHeadModel"], "n_embd": ')
    expectCleanFailure(await cli('inspect', broken), 1, /config\.json/)
    expectCleanFailure(await cli('score', broken, textFile, '--window', '8'), 1, /tokenizer|config\.json/)
    expectCleanFailure(await cli('generate', empty, '--prompt', 'x'), 1, /tokenizer|config\.json/)
  })

  it('usage errors exit 2', async () => {
    const r = await cli('score', fixture, textFile)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--window/)
    expect((await cli('generate', fixture, '--prompt', 'x', '--temperature', 'hot')).code).toBe(2)
    expect((await cli('frobnicate')).code).toBe(2)
  })
})
