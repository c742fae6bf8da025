// Chat sessions end to end, without a browser: the native engine and node-llama-cpp (GGUF child
// process) stream answers through the API; the context bar's figures, the policies, stop,
// regenerate with a seed, unload; and a GGUF child that aborts (llama.cpp's get_rows assertion,
// provoked through the test hook that lifts the position cap) or is killed with SIGKILL does not
// take the app down: the session reports the crash, other sessions keep working, restart works.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ChatSessionInfo, ChatTokenEvent, ParsedArgsOf } from '../../src-main/api/contract.ts'
import { chatMethodArgs } from '../../src-main/api/contract.ts'
import { GgufChatBackend } from '../../src-main/core/chat/backends.ts'
import { ChatService } from '../../src-main/core/chat/service.ts'
import { createCore, type Core } from '../../src-main/core/core.ts'
import { exportGguf } from '../../src-main/core/export/gguf/export-gguf.ts'
import { createNativeProbe } from '../../src-main/core/native-probe.ts'
import { loadTokenizer } from '../../src-main/core/tokenizer/index.ts'
import { EngineModel } from '../../src-main/engine/model.ts'
import { isolatedEnv, tempDir } from '../helpers/temp.ts'
import { trainTinyModel } from '../helpers/trained-tiny.ts'

let dir: Awaited<ReturnType<typeof tempDir>>
let modelDir: string
let gguf: string
const tokens: ChatTokenEvent[] = []
const sessionEvents: ChatSessionInfo[] = []
let unsafeGguf = false
let service: ChatService

beforeAll(async () => {
  dir = await tempDir('longctx-chat-')
  modelDir = await trainTinyModel(join(dir.path, 'trained'), { steps: 150 })
  const m = await EngineModel.load(modelDir)
  gguf = join(dir.path, 'trained.f16.gguf')
  await exportGguf({ model: m, tokenizerDir: modelDir, out: gguf, type: 'f16' })
  m.dispose()
  service = new ChatService({
    emitToken: (e) => tokens.push(e),
    emitSession: (i) => sessionEvents.push(i),
    backend: () => 'cpu',
    gguf: () => (unsafeGguf ? { gpu: false, allowBeyondPositions: true, contextSize: 256 } : { gpu: false }),
  })
}, 180_000)

afterAll(async () => {
  await service?.dispose()
  await dir?.cleanup()
})

const send = (args: Partial<ParsedArgsOf<'chat.send'>> & { sessionId: string }) => service.send(chatMethodArgs.send.parse(args))

async function answer(requestId: string, timeoutMs = 60_000): Promise<{ text: string; last: ChatTokenEvent; events: ChatTokenEvent[] }> {
  const start = Date.now()
  for (;;) {
    const events = tokens.filter((e) => e.requestId === requestId)
    const last = events.at(-1)
    if (last?.done) return { text: events.map((e) => e.text).join(''), last, events }
    if (Date.now() - start > timeoutMs) throw new Error(`no answer for ${requestId} within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('native engine sessions', () => {
  let id: string
  it('load: context size, attention, device', async () => {
    const info = await service.load(chatMethodArgs.load.parse({ source: { kind: 'model', path: modelDir } }))
    id = info.sessionId
    expect(info).toMatchObject({ backend: 'native', contextSize: 128, positionRows: 128, attention: ['dense', 'dense'], device: 'CPU', state: 'ready', warnings: [] })
  })

  it('streams a greedy completion identical to EngineModel.generate, with speed and context figures', async () => {
    const prompt = 'In the beginning God created'
    const r = await send({ sessionId: id, format: 'completion', prompt, sampling: { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, maxTokens: 40, seed: 1 } })
    const { text, last, events } = await answer(r.requestId)
    const m = await EngineModel.load(modelDir)
    const tok = await loadTokenizer(modelDir)
    let expected = ''
    for await (const piece of m.generate(tok, prompt, { maxTokens: 40, temperature: 0 })) expected += piece
    m.dispose()
    expect(text).toBe(expected)
    expect(last).toMatchObject({ done: true, stopReason: 'max_tokens', tokens: 40, contextUsed: r.promptTokens + 40, contextSize: 128, error: null })
    expect(last.tokensPerSec).toBeGreaterThan(0)
    expect(last.timeToFirstTokenMs).toBeGreaterThanOrEqual(0)
    expect(events.length).toBeGreaterThanOrEqual(1)
    expect(events.slice(0, -1).every((e) => !e.done)).toBe(true)
  })

  it('a fixed seed repeats the same sampled answer (regenerate), a new seed is reported', async () => {
    const sampling = { temperature: 1, topK: 40, topP: 0.95, repetitionPenalty: 1.1, maxTokens: 30, seed: 1234 }
    const messages = [{ role: 'user' as const, content: 'Who made the heaven?' }]
    const a = await answer((await send({ sessionId: id, messages, sampling })).requestId)
    const b = await answer((await send({ sessionId: id, messages, sampling })).requestId)
    expect(b.text).toBe(a.text)
    const c = await send({ sessionId: id, messages, sampling: { ...sampling, seed: null } })
    expect(c.seed).toBeGreaterThanOrEqual(0)
    await answer(c.requestId)
  })

  it('fills the context and stops there (context_full), never beyond the position rows', async () => {
    const r = await send({ sessionId: id, format: 'completion', prompt: 'And', sampling: { temperature: 0.8, topK: 0, topP: 1, repetitionPenalty: 1, maxTokens: 5000, seed: 3 } })
    const { last } = await answer(r.requestId)
    // end-of-text may come first; otherwise the context is full
    if (last.stopReason !== 'eos') expect(last).toMatchObject({ stopReason: 'context_full', contextUsed: 128 })
    expect(last.contextUsed).toBeLessThanOrEqual(128)
  })

  it('stop ends a running answer with stopReason "user"', async () => {
    const r = await send({ sessionId: id, format: 'completion', prompt: 'And', sampling: { temperature: 0.8, topK: 0, topP: 1, repetitionPenalty: 1, maxTokens: 120, seed: 3 } })
    expect((await service.stop(id)).stopped).toBe(true)
    const { last } = await answer(r.requestId)
    expect(last.stopReason).toBe('user')
    expect((await service.stop(id)).stopped).toBe(false)
  })

  it('truncate-oldest drops old turns of a long conversation; refuse explains what is over', async () => {
    const long = 'and the earth was without form and void '.repeat(4)
    const messages = [
      { role: 'system' as const, content: 'A conversation.' },
      ...Array.from({ length: 6 }, (_, i) => [
        { role: 'user' as const, content: `question ${i} ${long}` },
        { role: 'assistant' as const, content: `answer ${i} ${long}` },
      ]).flat(),
      { role: 'user' as const, content: 'last question?' },
    ]
    const sampling = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, maxTokens: 16, seed: 1 }
    const r = await send({ sessionId: id, messages, sampling, policy: 'truncate-oldest' })
    expect(r.droppedTurns).toBeGreaterThan(0)
    expect(r.promptTokens + 16).toBeLessThanOrEqual(128)
    await answer(r.requestId)
    await expect(send({ sessionId: id, messages, sampling, policy: 'refuse' })).rejects.toMatchObject({ code: 'bad_input' })
    expect((await service.countTokens(id, 'In the beginning')).tokens).toBe((await loadTokenizer(modelDir)).encode('In the beginning').length)
  })

  it('unload frees the session', async () => {
    expect((await service.unload(id)).unloaded).toBe(true)
    expect(service.list().find((s) => s.sessionId === id)).toBeUndefined()
    await expect(send({ sessionId: id, prompt: 'x', format: 'completion' })).rejects.toMatchObject({ code: 'not_found' })
    expect(sessionEvents.at(-1)).toMatchObject({ sessionId: id, state: 'unloaded' })
  })
})

describe('GGUF sessions (node-llama-cpp in a child process)', () => {
  it('streams an answer; greedy text matches the native engine', async () => {
    const info = await service.load(chatMethodArgs.load.parse({ source: { kind: 'gguf', path: gguf } }))
    expect(info).toMatchObject({ backend: 'gguf', contextSize: 128, positionRows: 128, warnings: [] })
    expect(info.device).toMatch(/CPU/)
    const native = await service.load(chatMethodArgs.load.parse({ source: { kind: 'model', path: modelDir } }))
    const sampling = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, maxTokens: 30, seed: 1 }
    const messages = [{ role: 'user' as const, content: 'What did God create in the beginning?' }]
    // both at once: compare mode
    const [g, n] = await Promise.all([send({ sessionId: info.sessionId, messages, sampling }), send({ sessionId: native.sessionId, messages, sampling })])
    expect(g.promptTokens).toBe(n.promptTokens)
    const [ga, na] = await Promise.all([answer(g.requestId), answer(n.requestId)])
    expect(ga.text).toBe(na.text)
    expect(ga.last.stopReason).toBe(na.last.stopReason)
    await service.unload(info.sessionId)
    await service.unload(native.sessionId)
  })

  it('a child killed with SIGKILL mid-answer is reported; restart brings the model back', async () => {
    const info = await service.load(chatMethodArgs.load.parse({ source: { kind: 'gguf', path: gguf } }))
    const r = await send({ sessionId: info.sessionId, format: 'completion', prompt: 'And', sampling: { temperature: 0.8, topK: 0, topP: 1, repetitionPenalty: 1, maxTokens: 120, seed: 5 } })
    ;(service.backendOf(info.sessionId) as GgufChatBackend).kill('SIGKILL')
    const { last } = await answer(r.requestId)
    // the answer may have finished before the signal landed on a fast machine
    if (last.stopReason === 'crashed') expect(last.error).toMatch(/SIGKILL/)
    await expect.poll(() => service.list().find((s) => s.sessionId === info.sessionId)?.state).toBe('crashed')
    expect(sessionEvents.at(-1)).toMatchObject({ sessionId: info.sessionId, state: 'crashed' })
    await expect(send({ sessionId: info.sessionId, prompt: 'x', format: 'completion' })).rejects.toThrow(/SIGKILL.*Restart/s)
    const again = await service.restart(info.sessionId)
    expect(again).toMatchObject({ sessionId: info.sessionId, state: 'ready' })
    const ok = await answer((await send({ sessionId: info.sessionId, format: 'completion', prompt: 'And God', sampling: { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, maxTokens: 5, seed: 1 } })).requestId)
    expect(ok.last.stopReason).toBe('max_tokens')
    await service.unload(info.sessionId)
  })

  it('llama.cpp aborting (position past the embedding rows) ends only the child; the app and other sessions live on', async () => {
    unsafeGguf = true // test hook: no position cap, context 256 on a 128-row model
    const info = await service.load(chatMethodArgs.load.parse({ source: { kind: 'gguf', path: gguf } }))
    unsafeGguf = false
    expect(info.contextSize).toBe(256)
    const pid = (service.backendOf(info.sessionId) as GgufChatBackend).pid
    const native = await service.load(chatMethodArgs.load.parse({ source: { kind: 'model', path: modelDir } }))
    const r = await send({ sessionId: info.sessionId, format: 'completion', prompt: 'And', sampling: { temperature: 0.8, topK: 0, topP: 1, repetitionPenalty: 1, maxTokens: 250, seed: 5 } })
    const { last } = await answer(r.requestId)
    expect(last.stopReason).toBe('crashed')
    expect(last.error).toMatch(/SIGABRT/)
    expect(last.error).toMatch(/GGML_ASSERT/)
    expect(last.contextUsed).toBeGreaterThanOrEqual(128) // it got as far as the missing position row
    expect(() => process.kill(pid!, 0)).toThrow() // the child is gone
    expect(service.list().find((s) => s.sessionId === info.sessionId)).toMatchObject({ state: 'crashed' })
    // this process is alive (we are running) and the native session still answers
    const n = await answer((await send({ sessionId: native.sessionId, format: 'completion', prompt: 'And God', sampling: { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, maxTokens: 5, seed: 1 } })).requestId)
    expect(n.last.stopReason).toBe('max_tokens')
    await service.unload(info.sessionId)
    await service.unload(native.sessionId)
  })
})

describe('through the API', () => {
  let core: Core
  afterAll(async () => {
    await core?.dispose()
  })

  it('chat.load / chat.send / chat.token events / chat.readDocument / export.start', async () => {
    core = await createCore({ mode: 'web', native: createNativeProbe(), env: isolatedEnv(join(dir.path, 'api')) })
    await core.call('settings.update', { backend: 'cpu' })
    const events: ChatTokenEvent[] = []
    core.on('chat.token', (e) => events.push(e))
    const info = (await core.call('chat.load', { source: { kind: 'model', path: modelDir } })) as ChatSessionInfo
    const doc = join(dir.path, 'doc.txt')
    await writeFile(doc, 'The document.\nSecond line.')
    expect(await core.call('chat.readDocument', { path: doc })).toMatchObject({ name: 'doc.txt', text: 'The document.\nSecond line.', bytes: 26 })
    const r = (await core.call('chat.send', {
      sessionId: info.sessionId,
      messages: [
        { role: 'system', content: 'The document.\nSecond line.' },
        { role: 'user', content: 'What is it?' },
      ],
      sampling: { maxTokens: 8, temperature: 0 },
    })) as { requestId: string }
    await expect.poll(() => events.find((e) => e.requestId === r.requestId && e.done), { timeout: 30_000 }).toBeTruthy()
    await expect(core.call('chat.send', { sessionId: info.sessionId, sampling: { temperature: -1 } })).rejects.toMatchObject({ code: 'invalid_argument' })
    expect(((await core.call('chat.sessions', {})) as ChatSessionInfo[]).length).toBe(1)
    const progress: unknown[] = []
    core.on('export.progress', (p) => progress.push(p))
    const { jobId } = (await core.call('export.start', { source: { kind: 'model', path: modelDir }, format: 'gguf', type: 'q8_0', out: join(dir.path, 'api.gguf') })) as { jobId: string }
    await expect.poll(() => progress.find((p) => (p as { jobId: string; done: boolean }).jobId === jobId && (p as { done: boolean }).done), { timeout: 30_000 }).toMatchObject({ phase: 'done' })
  })
})
