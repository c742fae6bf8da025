// Every engine error class reaches JS through the addon with its status name and its message,
// and the user-facing ApiError says which file and what to do.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile, rm, truncate, writeFile, mkdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { EngineError } from '../../src-main/engine/errors.ts'
import { inspectModel } from '../../src-main/engine/inspect.ts'
import { EngineModel } from '../../src-main/engine/model.ts'
import { loadNative, type NativeError } from '../../src-main/engine/native.ts'
import { tempDir } from '../helpers/temp.ts'
import { readSafetensors, tinyModel, writeSafetensors } from '../helpers/engine.ts'

let tmp: Awaited<ReturnType<typeof tempDir>>
let good: string
let n = 0

beforeAll(async () => {
  tmp = await tempDir('longctx-errors-')
  good = join(tmp.path, 'good')
  const m = await tinyModel(1)
  await m.save(good)
  m.dispose()
})
afterAll(() => tmp?.cleanup())

// A copy of the good model folder to break.
async function copyOfGood(): Promise<string> {
  const dir = join(tmp.path, `case-${n++}`)
  await mkdir(dir)
  for (const f of ['config.json', 'model.safetensors']) await writeFile(join(dir, f), await readFile(join(good, f)))
  return dir
}

async function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): Promise<void> {
  const c = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'))
  edit(c)
  await writeFile(join(dir, 'config.json'), JSON.stringify(c))
}

// The raw addon error (code + engine message) and the converted one (ApiError code + advice).
async function expectEngineError(
  dir: string,
  code: string,
  message: RegExp,
  apiCode: string,
): Promise<void> {
  const native = loadNative()
  const raw = (await native.Model.load(dir).then(
    () => null,
    (e: NativeError) => e,
  )) as NativeError | null
  expect(raw, 'load should fail').not.toBeNull()
  expect(raw!.code).toBe(code)
  expect(raw!.message).toMatch(message)
  // inspect reads the same files and fails the same way...
  const rawInspect = await native.inspect(dir).then(() => null, (e: NativeError) => e)
  expect(rawInspect?.code).toBe(code)
  // ...and through the wrappers it becomes an ApiError with advice.
  const wrapped = await EngineModel.load(dir).then(() => null, (e: unknown) => e)
  expect(wrapped).toBeInstanceOf(EngineError)
  expect((wrapped as EngineError).code).toBe(apiCode)
  expect((wrapped as EngineError).engineCode).toBe(code)
  expect((wrapped as EngineError).message).toMatch(message)
  await expect(inspectModel(dir)).rejects.toMatchObject({ code: apiCode, engineCode: code })
}

describe('engine errors through the addon', () => {
  it('missing config.json', async () => {
    const dir = await copyOfGood()
    await rm(join(dir, 'config.json'))
    await expectEngineError(dir, 'LCX_ERR_IO', /config\.json/, 'not_found')
  })

  it('unknown architecture', async () => {
    const dir = await copyOfGood()
    await editConfig(dir, (c) => {
      c.architectures = ['LlamaForCausalLM']
      c.model_type = 'llama'
    })
    await expectEngineError(dir, 'LCX_ERR_UNSUPPORTED', /LlamaForCausalLM|llama/, 'bad_input')
  })

  it('truncated safetensors', async () => {
    const dir = await copyOfGood()
    const file = join(dir, 'model.safetensors')
    await truncate(file, Math.floor((await stat(file)).size / 2))
    await expectEngineError(dir, 'LCX_ERR_FORMAT', /model\.safetensors.*truncated|truncated/i, 'bad_input')
  })

  it('tensor shape mismatch with config.json', async () => {
    const dir = await copyOfGood()
    await editConfig(dir, (c) => {
      c.n_embd = 48 // the tensors are 32 wide
    })
    await expectEngineError(dir, 'LCX_ERR_SHAPE', /\d+/, 'bad_input')
  })

  it('unsupported dtype', async () => {
    const dir = await copyOfGood()
    const file = join(dir, 'model.safetensors')
    const st = await readSafetensors(file)
    const name = Object.keys(st.header).find((k) => k.endsWith('wte.weight'))!
    ;(st.header[name] as { dtype: string }).dtype = 'I32' // same 4 bytes per element
    await writeSafetensors(file, st)
    await expectEngineError(dir, 'LCX_ERR_DTYPE', /I32/, 'bad_input')
  })

  it('bad token id and T > n_positions', async () => {
    const m = await tinyModel(2)
    try {
      const V = m.config.vocabSize
      const P = m.config.nPositions
      const bad = await m.forward({ tokens: [1, V + 5], B: 1, T: 2 }).then(() => null, (e: unknown) => e)
      expect(bad).toBeInstanceOf(EngineError)
      expect((bad as EngineError).engineCode).toBe('LCX_ERR_ARG')
      expect((bad as EngineError).message).toMatch(new RegExp(String(V + 5)))
      const long = await m.forward({ tokens: new Int32Array(P + 1), B: 1, T: P + 1 }).then(() => null, (e: unknown) => e)
      expect((long as EngineError).engineCode).toBe('LCX_ERR_ARG')
      expect((long as EngineError).message).toMatch(new RegExp(String(P)))
      // Also through training and generation.
      await m.trainInit({})
      await expect(m.forwardBackward({ tokens: [-1, 2], targets: [2, -1], B: 1, T: 2 })).rejects.toMatchObject({ engineCode: 'LCX_ERR_ARG' })
      await expect(m.generator(P + 1)).rejects.toMatchObject({ engineCode: 'LCX_ERR_ARG' })
      // Sizes that do not match B*T never reach the engine.
      await expect(m.forward({ tokens: [1, 2, 3], B: 1, T: 2 })).rejects.toMatchObject({ engineCode: 'LCX_ERR_ARG' })
    } finally {
      m.dispose()
    }
  })

  it('a bad config for create, and a CUDA request without CUDA', async () => {
    await expect(EngineModel.create({ vocabSize: 10, nPositions: 8, nEmbd: 30, nLayer: 1, nHead: 4 })).rejects.toMatchObject({
      engineCode: 'LCX_ERR_ARG',
    })
    if (!loadNative().backendsAvailable().includes('cuda'))
      await expect(EngineModel.create({ vocabSize: 10, nPositions: 8, nEmbd: 32, nLayer: 1, nHead: 4 }, 0, 'cuda')).rejects.toMatchObject({
        engineCode: 'LCX_ERR_BACKEND',
        code: 'engine',
      })
  })

  it('inspect on a missing or non-model folder', async () => {
    await expect(inspectModel(join(tmp.path, 'nope'))).rejects.toMatchObject({ code: 'not_found' })
    await expect(inspectModel(join(good, 'config.json'))).rejects.toMatchObject({ code: 'bad_input' })
    const empty = join(tmp.path, 'empty')
    await mkdir(empty)
    await expect(inspectModel(empty)).rejects.toMatchObject({ code: 'not_found', message: expect.stringMatching(/config\.json/) })
    const noWeights = await copyOfGood()
    await rm(join(noWeights, 'model.safetensors'))
    await expect(inspectModel(noWeights)).rejects.toMatchObject({ message: expect.stringMatching(/safetensors/) })
  })

  it('checkpoint file that does not exist', async () => {
    const m = await tinyModel(3)
    try {
      await m.trainInit({})
      await expect(m.loadCheckpoint(join(tmp.path, 'none.safetensors'))).rejects.toMatchObject({ engineCode: 'LCX_ERR_IO', code: 'not_found' })
    } finally {
      m.dispose()
    }
  })
})
