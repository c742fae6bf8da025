// Evaluation of a model during a run (and by `longctx eval`):
// - perplexity per window: held-out text cut into non-overlapping windows of each length, every
//   window scored on its own (N-1 predictions), PPL = exp(mean NLL over all of them);
// - sliding-window perplexity: windows of the length ending every `stride` tokens, each scoring
//   only its last `stride` tokens (so every scored token sees at least length - stride tokens
//   of its document before it, reaching back before the span when the document allows);
// - passkey retrieval: a random 5-digit number hidden at a depth in filler text, asked for at the
//   end, answered by greedy generation; accuracy by length x depth.
//
// The same text for every length: the held-out documents are cut into spans of the LONGEST
// evaluated length they reach (the first maxWindowsPerLength of them), and every shorter length
// cuts those same spans finer. Capped evaluations at 256 and 1024 then score the same tokens, so
// the difference between them is the context, not the sample. Lengths longer than the model's
// current context are skipped. Forwards use at most `batchTokens` tokens, so during training
// they reuse the training step's activation memory.
import type { PasskeyCell, RunPlan, WindowPerplexity } from '../api/runs.ts'
import { Prng } from '../core/datasets/prng.ts'
import { countHeldOutWindows, type DatasetReader } from '../core/datasets/index.ts'
import type { EngineModel, GenerationTokenizer } from '../engine/model.ts'

export type EvalSettings = RunPlan['eval']

export interface EvalOptions {
  maxContext: number // the model's n_positions now
  batchTokens: number
  seed: number
}

// A piece of a held-out document: tokens [offset, offset + length) of document `doc`.
export interface Span {
  doc: number
  offset: number
  length: number
}

// The first `maxSpans` non-overlapping spans of the longest length in `lengths` that some
// held-out document reaches; [] when none reaches even the shortest.
export function evaluationSpans(reader: DatasetReader, lengths: number[], maxSpans: number): Span[] {
  const reachable = lengths.filter((w) => countHeldOutWindows(reader, w) > 0)
  if (reachable.length === 0) return []
  const L = Math.max(...reachable)
  const spans: Span[] = []
  for (const doc of reader.heldOut) {
    for (let offset = 0; offset + L <= reader.lengths[doc]! && spans.length < maxSpans; offset += L) spans.push({ doc, offset, length: L })
    if (spans.length >= maxSpans) break
  }
  return spans
}

export async function perplexityOnSpans(
  model: EngineModel,
  reader: DatasetReader,
  spans: Span[],
  length: number,
  batchTokens: number,
): Promise<WindowPerplexity | null> {
  const windows: Span[] = []
  for (const s of spans) for (let j = 0; (j + 1) * length <= s.length; j++) windows.push({ doc: s.doc, offset: s.offset + j * length, length })
  if (windows.length === 0 || length < 2) return null
  const rows = Math.max(1, Math.floor(batchTokens / length))
  let nllSum = 0 // float64: many per-token values
  let predictions = 0
  for (let i = 0; i < windows.length; i += rows) {
    const group = windows.slice(i, i + rows)
    const B = group.length
    const tokens = new Int32Array(B * length)
    const targets = new Int32Array(B * length)
    for (const [b, w] of group.entries()) {
      await reader.readDocument(w.doc, w.offset, length, tokens, b * length)
      for (let t = 0; t < length; t++) targets[b * length + t] = t + 1 < length ? tokens[b * length + t + 1]! : -1
    }
    const r = await model.forward({ tokens, targets, B, T: length }, { nll: true })
    const nll = r.nll!
    for (let k = 0; k < nll.length; k++) if (targets[k]! >= 0) nllSum += nll[k]!
    predictions += B * (length - 1)
  }
  const nll = nllSum / predictions
  return { length, ppl: Math.exp(nll), nll, predictions }
}

// Scores the tokens [offset + 1, offset + length) of each span (what the span's own window would
// score) with windows of `length` tokens ending every `stride` tokens. At most `maxForwards`
// forwards: whole spans only, so every length scores the same tokens.
export async function slidingOnSpans(
  model: EngineModel,
  reader: DatasetReader,
  spans: Span[],
  length: number,
  stride: number,
  maxForwards: number,
): Promise<{ length: number; stride: number; ppl: number } | null> {
  if (stride >= length || spans.length === 0) return null
  const perSpan = Math.ceil(spans[0]!.length / stride)
  const used = spans.slice(0, Math.max(1, Math.floor(maxForwards / perSpan)))
  let nllSum = 0
  let predictions = 0
  for (const s of used) {
    for (let k = 1; k <= perSpan; k++) {
      const end = s.offset + Math.min(k * stride, s.length) // exclusive, in the document
      const first = Math.max(s.offset + 1, s.offset + (k - 1) * stride) // first scored token
      const start = Math.max(0, end - length)
      const T = end - start
      const tokens = new Int32Array(T)
      await reader.readDocument(s.doc, start, T, tokens)
      const targets = new Int32Array(T).fill(-1)
      // position i predicts token i + 1
      for (let t = first; t < end; t++) targets[t - 1 - start] = tokens[t - start]!
      const r = await model.forward({ tokens, targets, B: 1, T }, { nll: true })
      for (let i = 0; i < T; i++) if (targets[i]! >= 0) nllSum += r.nll![i]!
      predictions += end - first
    }
  }
  if (predictions === 0) return null
  return { length, stride, ppl: Math.exp(nllSum / predictions) }
}

// ---- passkey ----------------------------------------------------------------------------------

// Short on purpose: the prompt must fit a small model's base context with filler to spare.
const PASSKEY_INTRO = 'Remember the secret number hidden in this text.\n\n'
const PASSKEY_FILLER = 'The hills are green and the river runs down to the sea. The day goes by as it always has. '
const PASSKEY_QUESTION = '\n\nThe secret number is'
const ANSWER_TOKENS = 8

export interface PasskeyTokenizer extends GenerationTokenizer {
  decode(ids: ArrayLike<number>): string
}

export function passkeyNeedle(key: string): string {
  return `The secret number is ${key}. Remember it. `
}

// A prompt of exactly `length - ANSWER_TOKENS` tokens (room for the answer within `length`),
// the needle after round(depth x filler) tokens of filler, at a sentence start. Null when the
// length is too short to hold the intro, the needle and the question.
export function passkeyPrompt(tok: PasskeyTokenizer, length: number, depth: number, key: string): Int32Array | null {
  const intro = Array.from(tok.encode(PASSKEY_INTRO))
  const needle = Array.from(tok.encode(passkeyNeedle(key)))
  const question = Array.from(tok.encode(PASSKEY_QUESTION))
  const sentence = Array.from(tok.encode(PASSKEY_FILLER))
  const fillerLength = length - ANSWER_TOKENS - intro.length - needle.length - question.length
  if (fillerLength < 0) return null
  const filler: number[] = []
  while (filler.length < fillerLength) filler.push(...sentence)
  filler.length = fillerLength
  let at = Math.round(depth * fillerLength)
  at = Math.min(fillerLength, Math.floor(at / sentence.length) * sentence.length)
  return Int32Array.from([...intro, ...filler.slice(0, at), ...needle, ...filler.slice(at), ...question])
}

export async function passkeyAccuracy(
  model: EngineModel,
  tok: PasskeyTokenizer,
  settings: NonNullable<EvalSettings['passkey']>,
  opts: EvalOptions,
): Promise<PasskeyCell[]> {
  const cells: PasskeyCell[] = []
  for (const length of settings.lengths) {
    if (length > opts.maxContext) continue
    for (const [di, depth] of settings.depths.entries()) {
      // The same keys at every evaluation of a run, so the heatmaps compare like with like.
      const rng = Prng.fromSeed(opts.seed ^ Math.imul(length, 2654435761) ^ Math.imul(di + 1, 40503), 7)
      let right = 0
      let trials = 0
      for (let t = 0; t < settings.trials; t++) {
        const key = String(10000 + rng.nextInt(90000))
        const prompt = passkeyPrompt(tok, length, depth, key)
        if (!prompt) break
        const out: number[] = []
        for await (const id of model.generateTokens(prompt, { maxTokens: ANSWER_TOKENS, temperature: 0, stopAtEos: false })) out.push(id)
        const answer = tok.decode(out).match(/\d+/)?.[0]
        if (answer === key) right++
        trials++
      }
      if (trials > 0) cells.push({ length, depth, accuracy: right / trials, trials })
    }
  }
  return cells
}

export interface EvalOutcome {
  windows: WindowPerplexity[]
  sliding: Array<{ length: number; stride: number; ppl: number }> | null
  passkey: PasskeyCell[] | null
}

export async function evaluateModel(
  model: EngineModel,
  reader: DatasetReader,
  tok: PasskeyTokenizer | null,
  settings: EvalSettings,
  opts: EvalOptions,
): Promise<EvalOutcome> {
  const all = [...new Set(settings.windows)].sort((a, b) => a - b)
  const spans = evaluationSpans(reader, all, settings.maxWindowsPerLength)
  const lengths = all.filter((w) => w <= opts.maxContext)
  const windows: WindowPerplexity[] = []
  for (const w of lengths) {
    const r = await perplexityOnSpans(model, reader, spans, w, opts.batchTokens)
    if (r) windows.push(r)
  }
  let sliding: EvalOutcome['sliding'] = null
  if (settings.slidingStride !== null) {
    sliding = []
    for (const w of lengths) {
      const r = await slidingOnSpans(model, reader, spans, w, settings.slidingStride, settings.maxWindowsPerLength)
      if (r) sliding.push(r)
    }
  }
  const passkey = settings.passkey && tok ? await passkeyAccuracy(model, tok, settings.passkey, opts) : null
  return { windows, sliding, passkey }
}
