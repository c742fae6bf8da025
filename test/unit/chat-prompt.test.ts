// The chat transcript format, the context policies and the stop-sequence cutter.
import { describe, expect, it } from 'vitest'
import type { ChatMessage } from '../../src-main/api/contract.ts'
import { answerReserve, fitChat, fitCompletion, formatTranscript, StopMatcher } from '../../src-main/core/chat/prompt.ts'

// One token per character: easy arithmetic on what fits.
const charTokens = async (t: string) => Array.from(t, (c) => c.charCodeAt(0))

const conversation: ChatMessage[] = [
  { role: 'system', content: 'DOC' },
  { role: 'user', content: 'q1' },
  { role: 'assistant', content: 'a1' },
  { role: 'user', content: 'q2' },
  { role: 'assistant', content: 'a2' },
  { role: 'user', content: 'q3' },
]

describe('chat transcript', () => {
  it('puts the system text first and ends with the assistant prefix', () => {
    expect(formatTranscript(conversation)).toBe('DOC\n\nUser: q1\nAssistant: a1\nUser: q2\nAssistant: a2\nUser: q3\nAssistant:')
    expect(formatTranscript([{ role: 'user', content: ' hi ' }])).toBe('User: hi\nAssistant:')
  })

  it('reserves room for the answer, at most a quarter of the context', () => {
    expect(answerReserve(256, 8192)).toBe(256)
    expect(answerReserve(256, 128)).toBe(32)
    expect(answerReserve(1, 128)).toBe(1)
  })
})

describe('context policies', () => {
  const full = formatTranscript(conversation).length // 65 characters = tokens

  it('keeps everything when it fits', async () => {
    const r = await fitChat(conversation, charTokens, full + 10, 10, 'truncate-oldest')
    expect(r).toMatchObject({ droppedTurns: 0 })
    expect(r.tokens.length).toBe(full)
  })

  it('truncate-oldest drops whole old turns and keeps the document and the question', async () => {
    const r = await fitChat(conversation, charTokens, full + 10 - 5, 10, 'truncate-oldest')
    // dropping "User: q1" also drops the orphaned "Assistant: a1"
    expect(r.droppedTurns).toBe(2)
    expect(String.fromCharCode(...r.tokens)).toBe('DOC\n\nUser: q2\nAssistant: a2\nUser: q3\nAssistant:')
    const tight = await fitChat(conversation, charTokens, 'DOC\n\nUser: q3\nAssistant:'.length + 10, 10, 'truncate-oldest')
    expect(tight.droppedTurns).toBe(4)
  })

  it('refuses with the numbers when even the document and the question do not fit', async () => {
    await expect(fitChat(conversation, charTokens, 20, 10, 'truncate-oldest')).rejects.toThrow(
      /document \(system text\) with the question takes 24 tokens, and the answer needs 10 more, but this model's context holds 20/,
    )
  })

  it('refuse never drops anything', async () => {
    await expect(fitChat(conversation, charTokens, full + 5, 10, 'refuse')).rejects.toThrow(/policy is "refuse"/)
  })

  it('needs a final user message', async () => {
    await expect(fitChat(conversation.slice(0, 3), charTokens, 1000, 10, 'refuse')).rejects.toMatchObject({ code: 'invalid_argument' })
  })

  it('completion keeps the end of a long prompt under truncate-oldest', async () => {
    const r = await fitCompletion('abcdefghij', charTokens, 8, 2, 'truncate-oldest', null)
    expect(String.fromCharCode(...r.tokens)).toBe('efghij')
    expect(r.droppedTokens).toBe(4)
    await expect(fitCompletion('abcdefghij', charTokens, 8, 2, 'refuse', null)).rejects.toMatchObject({ code: 'bad_input' })
    expect((await fitCompletion('', charTokens, 8, 2, 'refuse', 511)).tokens).toEqual([511])
  })
})

describe('stop sequences', () => {
  it('cuts at "\\nUser:" even when it arrives in pieces, never showing a part of it', () => {
    const m = new StopMatcher(['\nUser:'])
    const shown = ['Hello', ' world', '\n', 'Us', 'er', ': more'].map((p) => m.push(p))
    expect(shown).toEqual(['Hello', ' world', '', '', '', ''])
    expect(m.stopped).toBe(true)
    expect(m.flush()).toBe('')
  })

  it('releases held-back text that turns out not to be a stop sequence', () => {
    const m = new StopMatcher(['\nUser:'])
    expect(m.push('a\nUs')).toBe('a')
    expect(m.push('ual')).toBe('\nUsual')
    expect(m.push('\n')).toBe('')
    expect(m.flush()).toBe('\n')
    expect(new StopMatcher([]).push('x\nUser:')).toBe('x\nUser:')
  })
})
