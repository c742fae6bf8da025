// Turning a conversation into the text a GPT-2-family base model continues, and keeping it inside
// the context. These models have no chat template, so the transcript is plain text:
//
//   <system text and the loaded document>
//
//   User: <question>
//   Assistant: <answer>
//   User: <question>
//   Assistant:
//
// and an answer ends where the model starts the next "User:" line (or at end-of-text).
import { ApiError, type ChatMessage, type ContextPolicy } from '../../api/contract.ts'

export const USER_PREFIX = 'User:'
export const ASSISTANT_PREFIX = 'Assistant:'
export const CHAT_STOP_SEQUENCES = [`\n${USER_PREFIX}`]

export function formatTranscript(messages: readonly ChatMessage[]): string {
  const system = messages
    .filter((m) => m.role === 'system' && m.content.trim() !== '')
    .map((m) => m.content.trim())
    .join('\n\n')
  const turns = messages
    .filter((m) => m.role !== 'system')
    .map((m) => `${m.role === 'user' ? USER_PREFIX : ASSISTANT_PREFIX} ${m.content.trim()}`)
  return `${system ? `${system}\n\n` : ''}${turns.join('\n')}\n${ASSISTANT_PREFIX}`
}

// Room the prompt must leave for the answer before the policy acts: the requested maximum, but
// at most a quarter of the context, so a small model can still answer a long question.
export function answerReserve(maxTokens: number, contextSize: number): number {
  return Math.max(1, Math.min(maxTokens, Math.ceil(contextSize / 4)))
}

export interface FittedPrompt {
  tokens: number[]
  droppedTurns: number
  droppedTokens: number
}

type Tokenize = (text: string) => Promise<number[]>

function overflowMessage(what: string, tokens: number, contextSize: number, reserve: number): string {
  return (
    `${what} takes ${tokens} tokens, and the answer needs ${reserve} more, but this model's context holds ${contextSize}. ` +
    'Shorten the document or the question, lower "max tokens", or load a model with a longer context.'
  )
}

export async function fitChat(
  messages: readonly ChatMessage[],
  tokenize: Tokenize,
  contextSize: number,
  reserve: number,
  policy: ContextPolicy,
): Promise<FittedPrompt> {
  const last = messages.at(-1)
  if (!last || last.role !== 'user' || last.content.trim() === '')
    throw new ApiError('invalid_argument', 'The conversation must end with a message from the user.')
  const system = messages.filter((m) => m.role === 'system')
  let turns = messages.filter((m) => m.role !== 'system')
  let dropped = 0
  for (;;) {
    const tokens = await tokenize(formatTranscript([...system, ...turns]))
    if (tokens.length + reserve <= contextSize) return { tokens, droppedTurns: dropped, droppedTokens: 0 }
    if (policy === 'refuse')
      throw new ApiError(
        'bad_input',
        overflowMessage('The conversation', tokens.length, contextSize, reserve) +
          ' (The context policy is "refuse"; "drop oldest turns" would make room.)',
      )
    if (turns.length <= 1) {
      // Only the system text (the document) and the question are left: those are never cut.
      const what = system.length ? 'The document (system text) with the question' : 'The question'
      throw new ApiError('bad_input', overflowMessage(what, tokens.length, contextSize, reserve))
    }
    // Drop the oldest turn; a reply left without its question goes too.
    turns = turns.slice(1)
    dropped++
    while (turns.length > 1 && turns[0]!.role === 'assistant') {
      turns = turns.slice(1)
      dropped++
    }
  }
}

export async function fitCompletion(
  prompt: string,
  tokenize: Tokenize,
  contextSize: number,
  reserve: number,
  policy: ContextPolicy,
  eosTokenId: number | null,
): Promise<FittedPrompt> {
  let tokens = await tokenize(prompt)
  // GPT-2 starts documents after <|endoftext|>; an empty prompt starts there too.
  if (tokens.length === 0 && eosTokenId !== null) tokens = [eosTokenId]
  if (tokens.length === 0) throw new ApiError('invalid_argument', 'The prompt is empty.')
  const room = contextSize - reserve
  if (tokens.length <= room) return { tokens, droppedTurns: 0, droppedTokens: 0 }
  if (policy === 'refuse')
    throw new ApiError('bad_input', overflowMessage('The prompt', tokens.length, contextSize, reserve) + ' (The context policy is "refuse".)')
  // Keep the end of the text: it is what the model continues.
  return { tokens: tokens.slice(tokens.length - room), droppedTurns: 0, droppedTokens: tokens.length - room }
}

// Cuts the streamed answer at a stop sequence. Text that might be the start of one ("\nUs") is
// held back until it is clear, so the user never sees half of "User:" flash and vanish.
export class StopMatcher {
  private full = ''
  private emitted = 0
  stopped = false

  constructor(private readonly stops: readonly string[]) {}

  // Returns the text that is safe to show now.
  push(piece: string): string {
    if (this.stopped) return ''
    this.full += piece
    let cut = -1
    for (const s of this.stops) {
      const i = this.full.indexOf(s, Math.max(0, this.emitted - s.length))
      if (i >= 0 && (cut < 0 || i < cut)) cut = i
    }
    if (cut >= 0) {
      this.stopped = true
      const out = this.full.slice(this.emitted, Math.max(cut, this.emitted))
      this.emitted = Math.max(cut, this.emitted)
      return out
    }
    let hold = 0
    for (const s of this.stops)
      for (let k = Math.min(s.length - 1, this.full.length); k > hold; k--)
        if (this.full.endsWith(s.slice(0, k))) {
          hold = k
          break
        }
    const safe = Math.max(this.emitted, this.full.length - hold)
    const out = this.full.slice(this.emitted, safe)
    this.emitted = safe
    return out
  }

  // The held-back text, when the stream ends without a stop sequence.
  flush(): string {
    if (this.stopped) return ''
    const out = this.full.slice(this.emitted)
    this.emitted = this.full.length
    return out
  }
}
