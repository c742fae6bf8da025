// The tokenizer as llama.cpp's "gpt2" (byte-level BPE) vocabulary wants it in GGUF metadata:
// one token string per id of the model's embedding table (byte-level spelling, as in vocab.json),
// a type per token, and the merges in rank order as "left right" strings.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { findTokenizerFiles, loadTokenizer } from '../../tokenizer/index.ts'
import { GgufTokenType } from './format.ts'

export interface GgufVocabulary {
  tokens: string[]
  tokenTypes: GgufTokenType[]
  merges: string[]
  bosTokenId: number | null
  eosTokenId: number | null
  // ids the model has rows for but the tokenizer never produces (padding of the embedding table)
  paddedIds: number
}

// Merges (and the non-special added tokens) straight from the files: the tokenizer module keeps
// merges only inside its BPE tables.
async function readTokenizerExtras(dir: string): Promise<{ merges: string[]; userDefined: Set<string> }> {
  const files = await findTokenizerFiles(dir)
  if (!files) throw new Error(`${dir} has no tokenizer files (tokenizer.json, or vocab.json + merges.txt)`)
  const userDefined = new Set<string>()
  if (files.kind === 'tokenizer.json') {
    const json = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as {
      model?: { merges?: unknown }
      added_tokens?: Array<{ content?: unknown; special?: unknown }>
    }
    const merges = json.model?.merges
    if (!Array.isArray(merges)) throw new Error(`${join(dir, 'tokenizer.json')}: model.merges is not an array`)
    for (const t of json.added_tokens ?? []) if (t.special !== true && typeof t.content === 'string') userDefined.add(t.content)
    // Two spellings exist: "a b" strings (older files) and [a, b] pairs (tokenizers >= 0.20).
    return { merges: merges.map((m) => (Array.isArray(m) ? `${m[0]} ${m[1]}` : String(m))), userDefined }
  }
  try {
    const added = JSON.parse(await readFile(join(dir, 'added_tokens.json'), 'utf8')) as Record<string, unknown>
    for (const content of Object.keys(added)) userDefined.add(content)
  } catch {
    // most vocab.json folders have no added_tokens.json
  }
  const text = await readFile(join(dir, 'merges.txt'), 'utf8')
  const merges = text.split(/\r?\n/).filter((line, i) => line.trim() !== '' && !(i === 0 && line.startsWith('#version')))
  return { merges, userDefined }
}

async function configTokenIds(dir: string): Promise<{ bos: number | null; eos: number | null }> {
  try {
    const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>
    const id = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null)
    return { bos: id(cfg.bos_token_id), eos: id(cfg.eos_token_id) }
  } catch {
    return { bos: null, eos: null }
  }
}

// modelVocabSize: rows of the token embedding; the GGUF token list must have exactly that many.
export async function ggufVocabulary(dir: string, modelVocabSize: number): Promise<GgufVocabulary> {
  const tok = await loadTokenizer(dir)
  if (tok.vocabSize > modelVocabSize)
    throw new Error(
      `the tokenizer in ${dir} has ${tok.vocabSize} tokens but the model only ${modelVocabSize} embedding rows; ` +
        'pick the tokenizer that belongs to this model',
    )
  const extras = await readTokenizerExtras(dir)
  const tokens: string[] = []
  const tokenTypes: GgufTokenType[] = []
  let paddedIds = 0
  for (let id = 0; id < modelVocabSize; id++) {
    const t = tok.idToToken(id)
    if (t === undefined) {
      // Same placeholder spelling HF conversion scripts use for rows without a token.
      tokens.push(`[PAD${id}]`)
      tokenTypes.push(GgufTokenType.UNUSED)
      paddedIds++
      continue
    }
    tokens.push(t)
    // CONTROL tokens are cut out of the text only when the caller asks for special tokens, and
    // USER_DEFINED ones always: the same split HF's tokenizer makes for special / added tokens.
    if (tok.isSpecial(id)) tokenTypes.push(GgufTokenType.CONTROL)
    else if (extras.userDefined.has(t)) tokenTypes.push(GgufTokenType.USER_DEFINED)
    else tokenTypes.push(GgufTokenType.NORMAL)
  }
  const ids = await configTokenIds(dir)
  const eos = tok.eosTokenId ?? ids.eos
  return { tokens, tokenTypes, merges: extras.merges, bosTokenId: ids.bos ?? eos, eosTokenId: eos, paddedIds }
}
