// The chat store against a fake transport: what it sends (the whole history, the document as
// system text, the same seed to both sides in compare mode), how streamed events land in the
// right answer (also when they beat chat.send's reply), regenerate, and a crashed session.
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { ArgsOf, ChatSessionInfo, ChatTokenEvent } from '@contract'
import { installApiClient } from '@/api'
import { useChatStore } from '@/stores/chat'
import { deferred, FakeApi } from './fake-api'

let fake: FakeApi
let nextRequest = 1

function session(id: string, over: Partial<ChatSessionInfo> = {}): ChatSessionInfo {
  return {
    sessionId: id,
    source: { kind: 'model', path: `/models/${id}` },
    backend: 'native',
    modelName: id,
    contextSize: 128,
    positionRows: 128,
    attention: ['dense'],
    warnings: [],
    device: 'CPU',
    state: 'ready',
    crash: null,
    ...over,
  }
}

function token(requestId: string, sessionId: string, over: Partial<ChatTokenEvent> = {}): ChatTokenEvent {
  return {
    sessionId,
    requestId,
    text: '',
    tokens: 1,
    tokensPerSec: null,
    timeToFirstTokenMs: 5,
    contextUsed: 20,
    contextSize: 128,
    done: false,
    stopReason: null,
    error: null,
    ...over,
  }
}

beforeEach(() => {
  nextRequest = 1
  fake = new FakeApi('web', {
    'chat.load': (args) => session(args.source.kind === 'gguf' ? 'g' : 'n'),
    'chat.send': (args) => ({ requestId: `r${nextRequest++}-${args.sessionId}`, promptTokens: 10, droppedTurns: 0, droppedTokens: 0, seed: args.sampling?.seed ?? 7, contextSize: 128 }),
    'chat.sessions': () => [],
    'chat.countTokens': ({ text }) => ({ tokens: text.length }),
    'chat.readDocument': ({ path }) => ({ path, name: 'doc.txt', text: 'The document.', bytes: 13 }),
    'chat.stop': () => ({ stopped: true }),
    'chat.restart': ({ sessionId }) => session(sessionId),
    'chat.unload': () => ({ unloaded: true }),
  })
  installApiClient(fake)
  setActivePinia(createPinia())
})

afterEach(() => {
  installApiClient(null)
})

const sends = () => fake.callsOf('chat.send').map((c) => c.args as ArgsOf<'chat.send'>)

describe('useChatStore', () => {
  it('sends the history with the document as system text, and streams the answer into place', async () => {
    const chat = useChatStore()
    expect(await chat.load('a', { kind: 'model', path: '/models/n' })).toBe(true)
    await chat.loadDocument('/docs/doc.txt')
    expect(chat.document).toMatchObject({ name: 'doc.txt', tokens: 13 })
    chat.draft = 'What is it?'
    await chat.send()
    expect(chat.draft).toBe('')
    const [first] = sends()
    expect(first!.messages).toEqual([
      { role: 'system', content: 'Document (doc.txt):\nThe document.' },
      { role: 'user', content: 'What is it?' },
    ])
    expect(first!.policy).toBe('truncate-oldest')
    const rid = 'r1-n'
    expect(chat.generating).toBe(true)
    fake.emit('chat.token', token(rid, 'n', { text: ' It is', tokens: 2 }))
    fake.emit('chat.token', token(rid, 'n', { text: ' a book.', tokens: 4, tokensPerSec: 50, contextUsed: 14, done: true, stopReason: 'stop_sequence' }))
    const answer = chat.sides.a.messages[1]!
    expect(answer).toMatchObject({ role: 'assistant', content: 'It is a book.', streaming: false, tokens: 4, tokensPerSec: 50, stopReason: 'stop_sequence' })
    expect(chat.sides.a.contextUsed).toBe(14)
    expect(chat.generating).toBe(false)

    chat.draft = 'And then?'
    await chat.send()
    expect(sends()[1]!.messages!.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user'])
  })

  it('keeps events that arrive before chat.send answers', async () => {
    const chat = useChatStore()
    await chat.load('a', { kind: 'model', path: '/m' })
    const reply = deferred<{ requestId: string; promptTokens: number; droppedTurns: number; droppedTokens: number; seed: number; contextSize: number }>()
    fake.handlers['chat.send'] = () => reply.promise
    chat.draft = 'Hi'
    const sending = chat.send()
    fake.emit('chat.token', token('early', 'n', { text: 'Hello', done: true, stopReason: 'eos' }))
    reply.resolve({ requestId: 'early', promptTokens: 3, droppedTurns: 0, droppedTokens: 0, seed: 1, contextSize: 128 })
    await sending
    expect(chat.sides.a.messages[1]).toMatchObject({ content: 'Hello', streaming: false, stopReason: 'eos' })
  })

  // The bug behind a CI failure: side A's reply drained every early event, so the GGUF side lost
  // its first words when they beat both replies.
  it('compare mode keeps each side\'s early events until that side\'s reply arrives', async () => {
    const chat = useChatStore()
    chat.setCompare(true)
    await chat.load('a', { kind: 'model', path: '/m' })
    await chat.load('b', { kind: 'gguf', path: '/m.gguf' })
    type Reply = { requestId: string; promptTokens: number; droppedTurns: number; droppedTokens: number; seed: number; contextSize: number }
    const replies = { n: deferred<Reply>(), g: deferred<Reply>() }
    fake.handlers['chat.send'] = (args) => replies[args.sessionId as 'n' | 'g'].promise
    chat.draft = 'Same question'
    const sending = chat.send()
    fake.emit('chat.token', token('rn', 'n', { text: ' and', tokens: 1 }))
    fake.emit('chat.token', token('rg', 'g', { text: ' and', tokens: 1 }))
    const reply = (requestId: string): Reply => ({ requestId, promptTokens: 3, droppedTurns: 0, droppedTokens: 0, seed: 1, contextSize: 128 })
    replies.n.resolve(reply('rn'))
    await new Promise((r) => setTimeout(r, 0))
    fake.emit('chat.token', token('rg', 'g', { text: ' he said', tokens: 3, done: true, stopReason: 'max_tokens' }))
    fake.emit('chat.token', token('rn', 'n', { text: ' he said', tokens: 3, done: true, stopReason: 'max_tokens' }))
    replies.g.resolve(reply('rg'))
    await sending
    expect(chat.sides.a.messages[1]!.content).toBe('and he said')
    expect(chat.sides.b.messages[1]!.content).toBe('and he said')
  })

  it('compare mode sends the same question and seed to both sides; regenerate replaces the answers', async () => {
    const chat = useChatStore()
    chat.setCompare(true)
    await chat.load('a', { kind: 'model', path: '/m' })
    await chat.load('b', { kind: 'gguf', path: '/m.gguf' })
    expect(chat.ready).toBe(true)
    chat.draft = 'Same question'
    await chat.send()
    const [a, b] = sends()
    expect(a!.sessionId).toBe('n')
    expect(b!.sessionId).toBe('g')
    expect(a!.sampling!.seed).toBe(b!.sampling!.seed)
    for (const [rid, sid] of [['r1-n', 'n'], ['r2-g', 'g']] as const) fake.emit('chat.token', token(rid, sid, { text: 'x', done: true, stopReason: 'max_tokens' }))
    expect(chat.canRegenerate).toBe(true)
    await chat.regenerate()
    expect(sends().length).toBe(4)
    expect(sends()[2]!.messages!.at(-1)).toEqual({ role: 'user', content: 'Same question' })
    expect(chat.sides.a.messages.map((m) => m.role)).toEqual(['user', 'assistant'])
    expect(chat.sides.a.messages[1]!.streaming).toBe(true)
  })

  it('a crashed session stops its answer, blocks sending, and restart clears the crash', async () => {
    const chat = useChatStore()
    await chat.load('a', { kind: 'gguf', path: '/m.gguf' })
    chat.draft = 'Hi'
    await chat.send()
    fake.emit('chat.session', session('g', { state: 'crashed', crash: 'stopped by SIGKILL' }))
    expect(chat.sides.a.session?.state).toBe('crashed')
    expect(chat.sides.a.messages[1]!.streaming).toBe(false)
    expect(chat.ready).toBe(false)
    await chat.restart('a')
    expect(chat.sides.a.session?.state).toBe('ready')
    expect(chat.ready).toBe(true)
  })

  it('completion mode sends the document and the text as one prompt', async () => {
    const chat = useChatStore()
    await chat.load('a', { kind: 'model', path: '/m' })
    await chat.loadDocument('/d')
    chat.format = 'completion'
    chat.sampling = { ...chat.sampling, seed: 42 }
    chat.draft = 'Continue:'
    await chat.send()
    expect(sends()[0]).toMatchObject({ format: 'completion', prompt: 'The document.\n\nContinue:', sampling: { seed: 42 } })
  })
})
