// The chat part of the API contract: sessions on the native engine (a model folder or a
// checkpoint, exact attention pattern) or on node-llama-cpp (a GGUF, in its own process), tokens
// streamed as 'chat.token' events. contract.ts re-exports everything here.
import { z } from 'zod'
import { modelSourceSchema, type ModelSourceArg } from './export.ts'

const absolutePath = z
  .string()
  .min(1, 'a path is required')
  .max(4096, 'path too long')
  .refine((p) => !p.includes('\0'), 'path contains a NUL byte')

export const chatSourceSchema = z.union([modelSourceSchema, z.object({ kind: z.literal('gguf'), path: absolutePath }).strict()])
export type ChatSource = ModelSourceArg | { kind: 'gguf'; path: string }

export const chatSamplingSchema = z
  .object({
    temperature: z.number().min(0).max(5).default(0.8), // 0 = greedy
    topK: z.number().int().min(0).max(100_000).default(40), // 0 = off
    topP: z.number().min(0).max(1).default(0.95), // 1 = off
    repetitionPenalty: z.number().min(0.5).max(3).default(1.1), // 1 = off
    maxTokens: z.number().int().min(1).max(65_536).default(256),
    seed: z.number().int().min(0).max(2 ** 47).nullable().default(null), // null = a new one each time
  })
  .strict()
export type ChatSampling = z.output<typeof chatSamplingSchema>

// What happens when the conversation no longer fits the context:
// - 'truncate-oldest': the oldest user/assistant turns are dropped (the system text and the
//   loaded document are kept) until the prompt leaves room for the answer; in completion mode
//   the beginning of the text is cut instead;
// - 'refuse': nothing is dropped and the request fails with how many tokens are over.
export type ContextPolicy = 'truncate-oldest' | 'refuse'

export const chatMessageSchema = z
  .object({ role: z.enum(['system', 'user', 'assistant']), content: z.string().max(4_000_000) })
  .strict()
export type ChatMessage = z.infer<typeof chatMessageSchema>

export type ChatBackendKind = 'native' | 'gguf'

export interface ChatSessionInfo {
  sessionId: string
  source: ChatSource
  backend: ChatBackendKind
  modelName: string
  contextSize: number // tokens a conversation may hold (prompt + answer)
  positionRows: number // the model's position-embedding rows (the hard limit)
  attention: string[] | null // per layer, when known
  warnings: string[] // e.g. a block-sparse model run by a dense runtime
  device: string // "CPU" | "CUDA" | what node-llama-cpp picked
  state: 'ready' | 'generating' | 'crashed' | 'unloaded'
  crash: string | null // why the GGUF process died, when it did
}

export type ChatStopReason =
  | 'eos' // the model ended its text
  | 'stop_sequence' // it started the next "User:" turn
  | 'max_tokens'
  | 'context_full' // prompt + answer reached the context size
  | 'user' // chat.stop, or a newer chat.send on the same session
  | 'error'
  | 'crashed' // the GGUF process died

export interface ChatSendResult {
  requestId: string
  promptTokens: number
  droppedTurns: number // user/assistant turns left out by the 'truncate-oldest' policy
  droppedTokens: number // completion mode: tokens cut from the start
  seed: number // the seed used (so regenerate can vary or repeat it)
  contextSize: number
}

export interface ChatTokenEvent {
  sessionId: string
  requestId: string
  text: string // new text since the previous event of this request
  tokens: number // generated so far
  tokensPerSec: number | null // decode speed: generated tokens after the first, per second
  timeToFirstTokenMs: number | null // from the request to the first generated token (prompt included)
  contextUsed: number // prompt + generated tokens
  contextSize: number
  done: boolean
  stopReason: ChatStopReason | null
  error: string | null
}

export const chatMethodArgs = {
  load: z
    .object({
      source: chatSourceSchema,
      contextSize: z.number().int().min(16).max(1 << 20).optional(), // default and cap: the position rows
    })
    .strict(),
  send: z
    .object({
      sessionId: z.string().min(1).max(100),
      format: z.enum(['chat', 'completion']).default('chat'),
      messages: z.array(chatMessageSchema).max(1000).optional(), // format 'chat'
      prompt: z.string().max(4_000_000).optional(), // format 'completion'
      sampling: chatSamplingSchema.default(chatSamplingSchema.parse({})),
      policy: z.enum(['truncate-oldest', 'refuse']).default('truncate-oldest'),
    })
    .strict(),
  stop: z.object({ sessionId: z.string().min(1).max(100) }).strict(),
  unload: z.object({ sessionId: z.string().min(1).max(100) }).strict(),
  restart: z.object({ sessionId: z.string().min(1).max(100) }).strict(),
  sessions: z.object({}).strict(),
  countTokens: z.object({ sessionId: z.string().min(1).max(100), text: z.string().max(4_000_000) }).strict(),
  readDocument: z.object({ path: absolutePath }).strict(),
}

export interface ChatDocument {
  path: string
  name: string
  text: string
  bytes: number
}
