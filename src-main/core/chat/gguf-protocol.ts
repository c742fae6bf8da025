// The messages between the app and the GGUF host child process (gguf-host.ts). Plain data only:
// they travel over the fork IPC channel as JSON. One request -> one 'result' or 'error' with the
// same id; a 'generate' request also streams 'token' messages before its result.

export interface HostSampling {
  temperature: number // 0 = greedy
  topK: number // 0 = off
  topP: number // 1 = off
  repetitionPenalty: number // 1 = off; CTRL-style over the tokens in the context, as the engine
  seed: number
}

export type HostRequest =
  | {
      op: 'load'
      id: number
      path: string
      gpu: 'auto' | false
      threads?: number
      contextSize?: number // <= the model's position rows unless allowBeyondPositions
      // Test hook: skips the position cap so a test can watch llama.cpp abort the child process.
      allowBeyondPositions?: boolean
    }
  | { op: 'tokenize'; id: number; text: string }
  | { op: 'generate'; id: number; prompt: number[]; sampling: HostSampling; maxTokens: number; stopAtEos: boolean }
  | { op: 'stop'; id: number; target: number } // stops the generate request `target`
  // next-token logits after each of `tokens` (a fresh sequence), for the agreement tests
  | { op: 'logits'; id: number; tokens: number[] }
  | { op: 'unload'; id: number }

export interface HostLoaded {
  contextSize: number // usable tokens per sequence: min(requested, position rows)
  trainContextSize: number // gpt2.context_length = the model's position rows
  vocabSize: number
  name: string | null
  eosTokenId: number | null
  gpu: string | false // the backend node-llama-cpp picked (false = CPU)
  // longctx.* keys of our own exports (attention pattern of block-sparse models)
  layerPattern: string[] | null
  denseRuntimeExact: boolean | null
}

export interface HostGenerateResult {
  stopReason: 'eos' | 'max_tokens' | 'context_full' | 'stopped'
  generated: number
  decodeMs: number // from the first to the last generated token
}

export type HostReply =
  | { op: 'ready' } // the child started and listens
  | { op: 'result'; id: number; value: unknown }
  | { op: 'error'; id: number; message: string }
  | { op: 'token'; id: number; tokens: number[]; text: string }
