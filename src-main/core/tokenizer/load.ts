// Finding and reading a model folder's tokenizer files. Two forms exist in the wild:
// - tokenizer.json (HF tokenizers' own format), which transformers prefers when present;
// - vocab.json + merges.txt (the original GPT-2 release and many older checkpoints), with the
//   special tokens in tokenizer_config.json / special_tokens_map.json / added_tokens.json.
// Only GPT-2-style byte-level BPE is accepted; anything else is refused with the file and the
// field named, rather than encoded differently from HF.

import { createHash } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import type { AddedToken } from './added-tokens.ts'
import { BpeModel } from './bpe.ts'
import { TokenizerFileError } from './errors.ts'
import { Tokenizer, type TokenizerKind } from './tokenizer.ts'

/**
 * Bumped whenever this encoder's output could change for the same files, so that `hash` (used as
 * a cache key for tokenized datasets) never serves ids made by an older, different encoder.
 */
export const TOKENIZER_IMPL_VERSION = 1

/** What findTokenizerFiles() reports about a folder (the shape the model inspection API shows). */
export interface TokenizerFiles {
  /** The form loadTokenizer() will read. */
  kind: TokenizerKind
  /** Names of the tokenizer files present in the folder, e.g. ["tokenizer.json", "vocab.json"]. */
  files: string[]
}

const FILE_NAMES = {
  tokenizerJson: 'tokenizer.json',
  vocabJson: 'vocab.json',
  mergesTxt: 'merges.txt',
  tokenizerConfigJson: 'tokenizer_config.json',
  specialTokensMapJson: 'special_tokens_map.json',
  addedTokensJson: 'added_tokens.json',
} as const

/** Absolute path of each tokenizer file, or null when the folder lacks it. */
type FoundFiles = { [K in keyof typeof FILE_NAMES]: string | null }

async function existingFile(path: string): Promise<string | null> {
  try {
    return (await stat(path)).isFile() ? path : null
  } catch {
    return null
  }
}

async function locateFiles(dir: string): Promise<FoundFiles> {
  const keys = Object.keys(FILE_NAMES) as Array<keyof typeof FILE_NAMES>
  const paths = await Promise.all(keys.map((k) => existingFile(join(dir, FILE_NAMES[k]))))
  return Object.fromEntries(keys.map((k, i) => [k, paths[i]!])) as FoundFiles
}

function kindOf(found: FoundFiles): TokenizerKind | null {
  if (found.tokenizerJson) return 'tokenizer.json'
  if (found.vocabJson && found.mergesTxt) return 'vocab.json+merges.txt'
  return null
}

/**
 * Which tokenizer files a model folder has and which form loadTokenizer() would read; null when
 * it has neither tokenizer.json nor both of vocab.json and merges.txt.
 */
export async function findTokenizerFiles(dir: string): Promise<TokenizerFiles | null> {
  const found = await locateFiles(dir)
  const kind = kindOf(found)
  if (kind === null) return null
  const keys = Object.keys(FILE_NAMES) as Array<keyof typeof FILE_NAMES>
  return { kind, files: keys.filter((k) => found[k] !== null).map((k) => FILE_NAMES[k]) }
}

// ---- small parsing helpers ----------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

const isObject = (v: Json | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v)

function describe(v: Json | undefined): string {
  if (v === undefined) return 'nothing'
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'object') return 'an object'
  const text = JSON.stringify(v)
  return `${typeof v} ${text.length > 40 ? text.slice(0, 40) + '...' : text}`
}

function parseJson(file: string, text: string): Json {
  if (text.trim() === '') throw new TokenizerFileError(file, 'the file is empty')
  try {
    return JSON.parse(text) as Json
  } catch (e) {
    throw new TokenizerFileError(file, `not valid JSON (${(e as Error).message})`)
  }
}

const isTokenId = (v: Json | undefined): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 31

function parseVocab(file: string, field: string, v: Json | undefined): Map<string, number> {
  if (!isObject(v)) throw new TokenizerFileError(file, `${field} must be an object of token -> id, got ${describe(v)}`)
  const vocab = new Map<string, number>()
  for (const [token, id] of Object.entries(v)) {
    if (!isTokenId(id)) {
      throw new TokenizerFileError(file, `${field}[${JSON.stringify(token)}] must be a non-negative integer id, got ${describe(id)}`)
    }
    vocab.set(token, id)
  }
  if (vocab.size === 0) throw new TokenizerFileError(file, `${field} is empty`)
  return vocab
}

/** A merge written "a b" (HF splits on single spaces and wants exactly two parts). */
function parseMergeLine(file: string, where: string, line: string): [string, string] {
  const parts = line.split(' ')
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    throw new TokenizerFileError(file, `${where}: expected two tokens separated by one space, got ${JSON.stringify(line)}`)
  }
  return [parts[0]!, parts[1]!]
}

function readString(v: Json | undefined): string | null {
  if (typeof v === 'string') return v
  // transformers writes AddedToken objects as {"content": ..., ...}
  if (isObject(v) && typeof v.content === 'string') return v.content
  return null
}

// ---- tokenizer.json -----------------------------------------------------------------------

interface ParsedTokenizerJson {
  vocab: Map<string, number>
  merges: Array<[string, string]>
  unkToken: string | null
  fuseUnk: boolean
  ignoreMerges: boolean
  addedTokens: AddedToken[]
  addPrefixSpace: boolean
  useRegex: boolean
}

function parseTokenizerJson(file: string, root: Json): ParsedTokenizerJson {
  if (!isObject(root)) throw new TokenizerFileError(file, `expected a JSON object at the top, got ${describe(root)}`)
  const model = root.model
  if (!isObject(model)) throw new TokenizerFileError(file, `"model" must be an object, got ${describe(model)}`)
  if (model.type !== undefined && model.type !== 'BPE') {
    throw new TokenizerFileError(file, `model.type is ${describe(model.type)}; only BPE (GPT-2 byte-level) tokenizers are supported`)
  }
  for (const key of ['continuing_subword_prefix', 'end_of_word_suffix'] as const) {
    const v = model[key]
    if (v !== undefined && v !== null && v !== '') {
      throw new TokenizerFileError(file, `model.${key} is ${describe(v)}; GPT-2 byte-level BPE uses none`)
    }
  }
  if (model.byte_fallback === true) {
    throw new TokenizerFileError(file, 'model.byte_fallback is true (a SentencePiece-style BPE); only GPT-2 byte-level BPE is supported')
  }
  if (model.dropout !== undefined && model.dropout !== null && model.dropout !== 0) {
    throw new TokenizerFileError(file, `model.dropout is ${describe(model.dropout)}; BPE dropout makes encoding random and is not supported`)
  }
  const vocab = parseVocab(file, 'model.vocab', model.vocab)

  if (!Array.isArray(model.merges)) throw new TokenizerFileError(file, `model.merges must be an array, got ${describe(model.merges)}`)
  const merges = model.merges.map((m, i): [string, string] => {
    const where = `model.merges[${i}]`
    if (typeof m === 'string') return parseMergeLine(file, where, m)
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]]
    throw new TokenizerFileError(file, `${where} must be "a b" or ["a", "b"], got ${describe(m)}`)
  })

  const unk = model.unk_token
  if (unk !== undefined && unk !== null && typeof unk !== 'string') {
    throw new TokenizerFileError(file, `model.unk_token must be a string or null, got ${describe(unk)}`)
  }

  if (root.normalizer !== undefined && root.normalizer !== null) {
    const type = isObject(root.normalizer) ? root.normalizer.type : root.normalizer
    throw new TokenizerFileError(file, `normalizer ${describe(type)} is not supported (GPT-2 byte-level BPE has none)`)
  }

  const pre = root.pre_tokenizer
  if (!isObject(pre) || pre.type !== 'ByteLevel') {
    const type = isObject(pre) ? pre.type : pre
    throw new TokenizerFileError(file, `pre_tokenizer ${describe(type)} is not supported; expected ByteLevel (GPT-2)`)
  }
  const decoder = root.decoder
  if (decoder !== undefined && decoder !== null && !(isObject(decoder) && decoder.type === 'ByteLevel')) {
    const type = isObject(decoder) ? decoder.type : decoder
    throw new TokenizerFileError(file, `decoder ${describe(type)} is not supported; expected ByteLevel (GPT-2)`)
  }

  const added = root.added_tokens ?? []
  if (!Array.isArray(added)) throw new TokenizerFileError(file, `added_tokens must be an array, got ${describe(added)}`)
  const declared = added.map((t, i): AddedToken => {
    const where = `added_tokens[${i}]`
    if (!isObject(t)) throw new TokenizerFileError(file, `${where} must be an object, got ${describe(t)}`)
    if (!isTokenId(t.id)) throw new TokenizerFileError(file, `${where}.id must be a non-negative integer, got ${describe(t.id)}`)
    if (typeof t.content !== 'string' || t.content === '') {
      throw new TokenizerFileError(file, `${where}.content must be a non-empty string, got ${describe(t.content)}`)
    }
    return {
      id: t.id,
      content: t.content,
      special: t.special === true,
      singleWord: t.single_word === true,
      lstrip: t.lstrip === true,
      rstrip: t.rstrip === true,
      // HF's default for a missing flag is normalized = !special.
      normalized: typeof t.normalized === 'boolean' ? t.normalized : t.special !== true,
    }
  })

  return {
    vocab,
    merges,
    addedTokens: assignAddedTokenIds(vocab, declared),
    unkToken: typeof unk === 'string' ? unk : null,
    fuseUnk: model.fuse_unk === true,
    ignoreMerges: model.ignore_merges === true,
    addPrefixSpace: pre.add_prefix_space === true,
    useRegex: pre.use_regex !== false,
  }
}

/**
 * HF tokenizers does not trust the ids written in added_tokens: it re-adds the tokens in file
 * order, giving each the vocabulary's id for its content, or else the next id after the vocabulary
 * (counted in entries) and after the added tokens so far. Well-formed files agree with that; for
 * the others, doing the same keeps the ids HF's.
 */
function assignAddedTokenIds(vocab: Map<string, number>, declared: AddedToken[]): AddedToken[] {
  const byContent = new Map<string, AddedToken>()
  let maxId = -1
  for (const token of declared) {
    const known = byContent.get(token.content)
    let id = known?.id ?? vocab.get(token.content)
    if (id === undefined) id = maxId >= vocab.size || vocab.size === 0 ? maxId + 1 : vocab.size
    // A repeated content keeps its id and takes the later flags, as in HF.
    byContent.set(token.content, { ...token, id })
    if (id > maxId) maxId = id
  }
  return [...byContent.values()]
}

// ---- vocab.json + merges.txt --------------------------------------------------------------

function parseMergesTxt(file: string, text: string): Array<[string, string]> {
  const merges: Array<[string, string]> = []
  const lines = text.split('\n')
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    // A "#version" header, and blank lines (the trailing newline), carry no merge.
    if (line === '' || line.startsWith('#version')) return
    merges.push(parseMergeLine(file, `line ${i + 1}`, line))
  })
  return merges
}

const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const

/**
 * The added tokens transformers' GPT2Tokenizer would cut out of text for a vocab.json + merges.txt
 * folder: its defaults (unk/bos/eos = <|endoftext|>), overridden by tokenizer_config.json, then by
 * special_tokens_map.json; plus added_tokens_decoder and added_tokens.json entries.
 */
function specialTokensForVocabFolder(
  vocab: Map<string, number>,
  config: JsonObject | null,
  configFile: string,
  specialMap: JsonObject | null,
  addedJson: JsonObject | null,
  addedJsonFile: string,
): { addedTokens: AddedToken[]; eosToken: string | null } {
  const named = new Map<string, string | null>([
    ['unk_token', '<|endoftext|>'],
    ['bos_token', '<|endoftext|>'],
    ['eos_token', '<|endoftext|>'],
  ])
  for (const source of [config, specialMap]) {
    if (!source) continue
    for (const key of SPECIAL_KEYS) {
      if (key in source) named.set(key, readString(source[key]))
    }
  }
  const extra: string[] = []
  for (const source of [config, specialMap]) {
    const list = source?.additional_special_tokens
    if (Array.isArray(list)) for (const t of list) {
      const s = readString(t)
      if (s !== null) extra.push(s)
    }
  }

  const byContent = new Map<string, AddedToken>()
  let nextId = 0
  for (const id of vocab.values()) if (id >= nextId) nextId = id + 1
  const add = (content: string, special: boolean, flags: Partial<AddedToken> = {}, id?: number): void => {
    if (content === '' || byContent.has(content)) return
    let tokenId = id ?? vocab.get(content)
    // transformers appends a special token the vocabulary lacks at the end of the vocabulary.
    if (tokenId === undefined) tokenId = nextId++
    byContent.set(content, {
      id: tokenId,
      content,
      special,
      singleWord: flags.singleWord ?? false,
      lstrip: flags.lstrip ?? false,
      rstrip: flags.rstrip ?? false,
      normalized: flags.normalized ?? !special,
    })
  }

  const decoderTable = config?.added_tokens_decoder
  if (isObject(decoderTable)) {
    for (const [idText, t] of Object.entries(decoderTable)) {
      const id = Number(idText)
      if (!Number.isInteger(id) || id < 0 || !isObject(t) || typeof t.content !== 'string') {
        throw new TokenizerFileError(configFile, `added_tokens_decoder[${JSON.stringify(idText)}] must map an integer id to {"content": ...}`)
      }
      add(t.content, t.special === true, {
        singleWord: t.single_word === true,
        lstrip: t.lstrip === true,
        rstrip: t.rstrip === true,
        normalized: typeof t.normalized === 'boolean' ? t.normalized : undefined,
      }, id)
    }
  }
  if (addedJson) {
    for (const [content, id] of Object.entries(addedJson)) {
      if (!isTokenId(id)) throw new TokenizerFileError(addedJsonFile, `${JSON.stringify(content)} must map to a non-negative integer id, got ${describe(id)}`)
      add(content, false, {}, id)
    }
  }
  // Tokens with explicit ids come first, so a special token missing from the vocabulary is
  // appended after all of them.
  for (const t of byContent.values()) if (t.id >= nextId) nextId = t.id + 1
  for (const content of named.values()) if (content !== null) add(content, true)
  for (const content of extra) add(content, true)
  return { addedTokens: [...byContent.values()], eosToken: named.get('eos_token') ?? null }
}

// ---- loading ------------------------------------------------------------------------------

interface ReadFile {
  name: string
  path: string
  bytes: Buffer
}

async function readRequired(path: string, name: string): Promise<ReadFile> {
  try {
    return { name, path, bytes: await readFile(path) }
  } catch (e) {
    throw new TokenizerFileError(path, `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`)
  }
}

function decodeUtf8(file: ReadFile): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(file.bytes)
  } catch {
    throw new TokenizerFileError(file.path, 'is not valid UTF-8 text')
  }
}

function contentHash(kind: TokenizerKind, files: ReadFile[]): string {
  const h = createHash('sha256')
  h.update(`longctx-tokenizer v${TOKENIZER_IMPL_VERSION}\0${kind}\0`)
  for (const f of files) {
    h.update(`${f.name}\0${f.bytes.length}\0`)
    h.update(f.bytes)
  }
  return h.digest('hex')
}

async function readOptionalJsonObject(path: string | null): Promise<{ file: ReadFile; json: JsonObject } | null> {
  if (path === null) return null
  const file = await readRequired(path, basename(path))
  const json = parseJson(path, decodeUtf8(file))
  if (!isObject(json)) throw new TokenizerFileError(path, `expected a JSON object, got ${describe(json)}`)
  return { file, json }
}

/** eos_token_id from the model's config.json, used only when the tokenizer files name no EOS. */
async function configEosId(dir: string): Promise<number | null> {
  try {
    const json = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Json
    // A broken config.json is the model loader's error to report, not the tokenizer's.
    return isObject(json) && isTokenId(json.eos_token_id) ? json.eos_token_id : null
  } catch {
    return null
  }
}

/**
 * Loads the tokenizer of a model folder: tokenizer.json when present, else vocab.json +
 * merges.txt. Throws TokenizerFileError naming the file and the problem.
 */
export async function loadTokenizer(modelDir: string): Promise<Tokenizer> {
  const found = await locateFiles(modelDir)
  const kind = kindOf(found)
  if (kind === null) {
    const isFolder = await stat(modelDir).then((st) => st.isDirectory(), () => false)
    if (!isFolder) throw new TokenizerFileError(modelDir, 'no such folder')
    const reason = found.vocabJson
      ? 'has vocab.json but no merges.txt (and no tokenizer.json)'
      : found.mergesTxt
        ? 'has merges.txt but no vocab.json (and no tokenizer.json)'
        : 'has no tokenizer: expected tokenizer.json, or vocab.json + merges.txt'
    throw new TokenizerFileError(modelDir, reason)
  }

  const config = await readOptionalJsonObject(found.tokenizerConfigJson)
  const specialMap = await readOptionalJsonObject(found.specialTokensMapJson)
  const hashed: ReadFile[] = []
  let parsed: ParsedTokenizerJson
  let eosToken: string | null = null
  let sourceFile: string

  if (kind === 'tokenizer.json') {
    const file = await readRequired(found.tokenizerJson!, 'tokenizer.json')
    hashed.push(file)
    for (const extra of [config, specialMap]) if (extra) hashed.push(extra.file)
    sourceFile = file.path
    parsed = parseTokenizerJson(file.path, parseJson(file.path, decodeUtf8(file)))
    // The added tokens are tokenizer.json's own; the configs only say which one ends a text.
    eosToken = readString(specialMap?.json.eos_token) ?? readString(config?.json.eos_token)
  } else {
    const vocabFile = await readRequired(found.vocabJson!, 'vocab.json')
    const mergesFile = await readRequired(found.mergesTxt!, 'merges.txt')
    hashed.push(vocabFile, mergesFile)
    const vocab = parseVocab(vocabFile.path, 'the vocabulary', parseJson(vocabFile.path, decodeUtf8(vocabFile)))
    const merges = parseMergesTxt(mergesFile.path, decodeUtf8(mergesFile))
    const addedJson = await readOptionalJsonObject(found.addedTokensJson)
    for (const extra of [config, specialMap, addedJson]) if (extra) hashed.push(extra.file)
    const specials = specialTokensForVocabFolder(
      vocab,
      config?.json ?? null,
      found.tokenizerConfigJson ?? '',
      specialMap?.json ?? null,
      addedJson?.json ?? null,
      found.addedTokensJson ?? '',
    )
    eosToken = specials.eosToken
    // merges.txt is where a bad merge is, but the vocabulary decides; name both.
    sourceFile = `${mergesFile.path} (with ${vocabFile.path})`
    parsed = {
      vocab,
      merges,
      unkToken: null,
      fuseUnk: false,
      ignoreMerges: false,
      addedTokens: specials.addedTokens,
      addPrefixSpace: false,
      useRegex: true,
    }
  }

  const model = new BpeModel(
    {
      vocab: parsed.vocab,
      merges: parsed.merges,
      unkToken: parsed.unkToken,
      fuseUnk: parsed.fuseUnk,
      ignoreMerges: parsed.ignoreMerges,
    },
    sourceFile,
  )

  const idOf = (token: string | null): number | null => {
    if (token === null) return null
    return parsed.addedTokens.find((t) => t.content === token)?.id ?? parsed.vocab.get(token) ?? null
  }
  const eosTokenId = idOf(eosToken) ?? (await configEosId(modelDir)) ?? idOf('<|endoftext|>')

  return new Tokenizer({
    kind,
    hash: contentHash(kind, hashed),
    model,
    vocab: parsed.vocab,
    addedTokens: parsed.addedTokens,
    eosTokenId,
    addPrefixSpace: parsed.addPrefixSpace,
    useRegex: parsed.useRegex,
  })
}
