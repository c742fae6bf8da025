// Streaming document readers, one per source format. Each turns a source into a sequence of
// document pieces: a document's text arrives in pieces of at most maxPieceChars (cut where the
// GPT-2 pre-tokenizer would split anyway, so tokenizing the pieces one by one gives the same
// tokens as tokenizing the whole), which keeps memory flat for a 100 MB single-line document and
// lets the worker pool tokenize one huge document on all cores.
//
// Document rules:
// - folder: one file = one document (recursive, sorted by relative path, hidden files skipped).
// - single .txt/.md: one document, unless `separator` is set: then a line equal to the separator
//   (surrounding whitespace ignored) ends a document; separator '' means "blank lines separate".
// - .jsonl / .json / .csv / .tsv / .parquet: one record = one document; the text is the chosen
//   field, or several fields joined with `joinWith` (e.g. title + text for Gazeta-style records).
import { once } from 'node:events'
import { isUtf8 } from 'node:buffer'
import { open, type FileHandle } from 'node:fs/promises'
import { parse as parseCsv } from 'csv-parse'
import { parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer } from 'hyparquet'
import { isWhiteSpace } from '../tokenizer/pretokenize.ts'
import { JsonArrayStream, JsonArrayStreamError } from './json-stream.ts'
import type { SourceFile, SourcePlan } from './sources.ts'
import {
  binaryError,
  DatasetInputError,
  firstInvalidUtf8,
  Utf8ChunkDecoder,
} from './text-decoding.ts'

export type BadLinePolicy = 'skip' | 'stop'

/** Bumped whenever the same source and options could give different documents (part of dataset ids). */
export const READER_VERSION = 1

export interface ReadOptions {
  /** Text field(s) of record formats; null = auto-detect ('text', then common names). */
  fields: string[] | null
  joinWith: string
  /** Single .txt only: a line equal to this separates documents; '' = blank lines; null = whole file. */
  separator: string | null
  onBadLine: BadLinePolicy
  /** A record (JSON line, JSON element, CSV row) larger than this is bad input, never held. */
  maxRecordBytes: number
  maxPieceChars: number
}

export const DEFAULT_READ_OPTIONS: ReadOptions = {
  fields: null,
  joinWith: '\n\n',
  separator: null,
  onBadLine: 'stop',
  maxRecordBytes: 64 * 1024 * 1024,
  maxPieceChars: 1 << 20,
}

export const TEXT_FIELD_CANDIDATES = ['text', 'content', 'body', 'article', 'document', 'story', 'passage']

/** A piece of the current document. `discard` drops the document begun so far (a bad file found midway). */
export interface DocPiece {
  text: string
  last: boolean
  discard?: boolean
  /** Source bytes consumed through this piece, summed over all files (for progress). */
  bytesEnd: number
  /** On a document's last piece: where it came from ("a.jsonl, line 3"), for previews. */
  where?: string
}

export interface FieldInfo {
  name: string
  type: string // 'string' | 'number' | ... as seen in the first records
  /** Average length in characters of string values in the first records. */
  avgChars: number
}

export interface SchemaInfo {
  file: string
  fields: FieldInfo[]
  textFields: string[]
}

/** Counts and the first messages about input that was skipped or worked around. */
export class ImportLog {
  skippedRecords = 0
  skippedFiles = 0
  emptyFiles = 0
  emptyDocuments = 0
  forcedCuts = 0
  readonly messages: string[] = []
  private static readonly MAX_MESSAGES = 20

  constructor(readonly policy: BadLinePolicy) {}

  /** A bad record: stop with the message, or count it and go on. */
  badRecord(message: string): void {
    if (this.policy === 'stop') {
      throw new DatasetInputError(
        `${message}. Fix it, or import with "skip bad lines" (CLI: --skip-bad) to leave such records out.`,
      )
    }
    this.skippedRecords++
    this.note(message)
  }

  badFile(err: DatasetInputError): void {
    if (this.policy === 'stop') throw err
    this.skippedFiles++
    this.note(err.message)
  }

  note(message: string): void {
    if (this.messages.length < ImportLog.MAX_MESSAGES) this.messages.push(message)
  }

  summary(): string[] {
    const out: string[] = []
    if (this.skippedRecords) out.push(`${this.skippedRecords} bad record${plural(this.skippedRecords)} skipped`)
    if (this.skippedFiles) out.push(`${this.skippedFiles} unreadable file${plural(this.skippedFiles)} skipped`)
    if (this.emptyFiles) out.push(`${this.emptyFiles} empty file${plural(this.emptyFiles)} skipped`)
    if (this.emptyDocuments) out.push(`${this.emptyDocuments} empty document${plural(this.emptyDocuments)} skipped`)
    if (this.forcedCuts) {
      out.push(
        `${this.forcedCuts} place${plural(this.forcedCuts)} where a very long run of text without spaces had to be cut; ` +
          'tokens there may differ slightly from tokenizing the whole text',
      )
    }
    return out
  }
}

function plural(n: number): string {
  return n === 1 ? '' : 's'
}

export interface ReadContext {
  options: ReadOptions
  log: ImportLog
  signal?: AbortSignal
  onSchema?: (info: SchemaInfo) => void
}

const READ_CHUNK = 1 << 20

export async function* readDocuments(plan: SourcePlan, ctx: ReadContext): AsyncGenerator<DocPiece> {
  let base = 0
  for (const file of plan.files) {
    ctx.signal?.throwIfAborted()
    switch (plan.format) {
      case 'folder':
        yield* readTextFile(file, base, ctx, null, true)
        break
      case 'txt':
        yield* readTextFile(file, base, ctx, ctx.options.separator, false)
        break
      case 'jsonl':
        yield* readJsonLines(file, base, ctx)
        break
      case 'json':
        yield* readJsonArray(file, base, ctx)
        break
      case 'csv':
      case 'tsv':
        yield* readCsv(file, base, ctx, plan.format === 'tsv' ? '\t' : ',')
        break
      case 'parquet':
        yield* readParquet(file, base, ctx)
        break
    }
    base += file.sizeBytes
  }
}

// ---- cutting documents into pieces ---------------------------------------------------------

/**
 * Where to cut `text` (length > maxChars) so both sides tokenize as they would together: before
 * a U+0020 that follows a non-space and precedes a non-space. There the GPT-2 pattern always
 * ends one pre-token and starts the next with " ?\p{L}+" (or its number/symbol variants), and
 * no pre-token looks behind. Returns the cut index, or -1 when the text has no such place.
 */
export function findSafeCut(text: string, from: number, to: number): number {
  for (let i = Math.min(to, text.length - 2); i > from; i--) {
    if (text.charCodeAt(i) !== 0x20) continue
    if (isWhiteSpace(text.charCodeAt(i - 1)) || isWhiteSpace(text.charCodeAt(i + 1))) continue
    return i
  }
  return -1
}

class DocumentPieces {
  private pending = ''

  constructor(
    private readonly maxChars: number,
    private readonly log: ImportLog,
  ) {}

  /** Adds text; returns the pieces that are ready (never the last one). */
  add(text: string): string[] {
    if (!text) return []
    this.pending = this.pending ? this.pending + text : text
    const out: string[] = []
    while (this.pending.length > this.maxChars) {
      // Prefer a cut in the second half so pieces stay large.
      let cut = findSafeCut(this.pending, this.maxChars >> 1, this.maxChars)
      if (cut < 0) {
        // No space for a whole piece: a forced cut, at a character boundary.
        cut = this.maxChars
        const unit = this.pending.charCodeAt(cut - 1)
        if (unit >= 0xd800 && unit <= 0xdbff) cut--
        this.log.forcedCuts++
      }
      out.push(this.pending.slice(0, cut))
      this.pending = this.pending.slice(cut)
    }
    return out
  }

  /** The rest of the document (possibly ''); resets for the next document. */
  finish(): string {
    const rest = this.pending
    this.pending = ''
    return rest
  }
}

/** Emits one whole document (record text) as pieces. */
function* documentFromText(text: string, ctx: ReadContext, bytesEnd: number, where: string): Generator<DocPiece> {
  if (!text) {
    ctx.log.emptyDocuments++
    return
  }
  const pieces = new DocumentPieces(ctx.options.maxPieceChars, ctx.log)
  for (const p of pieces.add(text)) yield { text: p, last: false, bytesEnd }
  yield { text: pieces.finish(), last: true, bytesEnd, where }
}

// ---- plain text ----------------------------------------------------------------------------

async function openForRead(file: SourceFile): Promise<FileHandle> {
  try {
    return await open(file.path, 'r')
  } catch (err) {
    throw new DatasetInputError(`${file.path} cannot be read (${(err as NodeJS.ErrnoException).code ?? err}).`)
  }
}

async function* readChunks(fh: FileHandle, signal?: AbortSignal): AsyncGenerator<Buffer> {
  for (;;) {
    signal?.throwIfAborted()
    // A fresh buffer per chunk: callers may keep slices of it.
    const buf = Buffer.allocUnsafe(READ_CHUNK)
    const { bytesRead } = await fh.read(buf, 0, READ_CHUNK, null)
    if (bytesRead === 0) return
    yield bytesRead === READ_CHUNK ? buf : buf.subarray(0, bytesRead)
  }
}

async function* readTextFile(
  file: SourceFile,
  base: number,
  ctx: ReadContext,
  separator: string | null,
  inFolder: boolean,
): AsyncGenerator<DocPiece> {
  if (file.sizeBytes === 0) {
    if (!inFolder) throw new DatasetInputError(`${file.path} is empty (0 bytes): there is nothing to import.`)
    ctx.log.emptyFiles++
    ctx.log.note(`${file.path} is empty and was skipped`)
    return
  }
  const fh = await openForRead(file)
  const decoder = new Utf8ChunkDecoder(file.path)
  const pieces = new DocumentPieces(ctx.options.maxPieceChars, ctx.log)
  const splitter = separator === null ? null : new SeparatorSplitter(separator)
  let emittedInDoc = false // pieces of the current document were already handed out
  let documents = 0

  const addText = function* (text: string, bytesEnd: number): Generator<DocPiece> {
    for (const p of pieces.add(text)) {
      emittedInDoc = true
      yield { text: p, last: false, bytesEnd }
    }
  }
  // Ends the current document; a blank one (only whitespace) is left out.
  const finishDoc = function* (bytesEnd: number): Generator<DocPiece> {
    const rest = pieces.finish()
    if (!emittedInDoc && rest.trim() === '') return
    emittedInDoc = false
    documents++
    yield { text: rest, last: true, bytesEnd, where: splitter ? `${file.rel}, document ${documents}` : file.rel }
  }
  const addDecoded = function* (text: string, bytesEnd: number, final: boolean): Generator<DocPiece> {
    if (!splitter) return yield* addText(text, bytesEnd)
    for (const part of splitter.push(text, final)) {
      if (part.kind === 'text') yield* addText(part.text, bytesEnd)
      else yield* finishDoc(bytesEnd)
    }
  }

  try {
    try {
      for await (const chunk of readChunks(fh, ctx.signal)) {
        const text = decoder.push(chunk)
        yield* addDecoded(text, base + decoder.bytesDecoded, false)
      }
      const end = base + file.sizeBytes
      yield* addDecoded(decoder.end(), end, true)
      yield* finishDoc(end)
    } catch (err) {
      if (!(err instanceof DatasetInputError) || !inFolder) throw err
      // A bad file inside a folder: stop, or drop what was handed out of it and go on.
      ctx.log.badFile(err)
      pieces.finish()
      if (emittedInDoc) yield { text: '', last: true, discard: true, bytesEnd: base + file.sizeBytes }
      return
    }
    if (documents === 0) {
      if (!inFolder) throw new DatasetInputError(`${file.path} holds only whitespace: there is nothing to import.`)
      ctx.log.emptyFiles++
      ctx.log.note(`${file.path} holds only whitespace and was skipped`)
    }
  } finally {
    await fh.close()
  }
}

type SplitPart = { kind: 'text'; text: string } | { kind: 'break' }

/**
 * Finds separator lines in streamed text. Only a line's first few KB are held back while it might
 * still be a separator, so a 100 MB line streams through.
 */
class SeparatorSplitter {
  private line = '' // the start of the current line, while it could still be a separator
  private lineIsLong = false
  private readonly maxSeparatorChars: number

  private readonly separator: string

  constructor(separator: string) {
    this.separator = separator.trim()
    this.maxSeparatorChars = Math.max(4096, separator.length + 256)
  }

  // Surrounding whitespace is ignored: "  ---  " and "---\r" are the separator "---".
  private isSeparator(line: string): boolean {
    return line.trim() === this.separator
  }

  *push(text: string, final = false): Generator<SplitPart> {
    let start = 0
    for (;;) {
      const nl = text.indexOf('\n', start)
      if (nl < 0) break
      const segment = text.slice(start, nl + 1)
      if (this.lineIsLong) {
        yield { kind: 'text', text: segment }
        this.lineIsLong = false
      } else {
        const full = this.line + segment
        this.line = ''
        if (this.isSeparator(full)) yield { kind: 'break' }
        else yield { kind: 'text', text: full }
      }
      start = nl + 1
    }
    const rest = text.slice(start)
    if (this.lineIsLong) {
      if (rest) yield { kind: 'text', text: rest }
    } else {
      this.line += rest
      if (this.line.length > this.maxSeparatorChars) {
        // Too long to be a separator line: let it stream as text.
        yield { kind: 'text', text: this.line }
        this.line = ''
        this.lineIsLong = true
      }
    }
    if (final && this.line) {
      if (!this.isSeparator(this.line)) yield { kind: 'text', text: this.line }
      this.line = ''
    }
  }
}

// ---- records (JSON lines, JSON, CSV, Parquet) ---------------------------------------------

/** Picks the text field(s) from the first record, or explains which fields exist. */
class FieldPicker {
  fields: string[] | null
  private seen: Map<string, { type: string; chars: number; n: number }> = new Map()
  private sampled = 0
  private announced = false

  constructor(
    private readonly ctx: ReadContext,
    private readonly file: string,
  ) {
    this.fields = ctx.options.fields
  }

  /** Observes a record's fields for the preview (first 50 records). */
  observe(record: Record<string, unknown>): void {
    if (this.sampled >= 50) return
    this.sampled++
    for (const [k, v] of Object.entries(record)) {
      const s = this.seen.get(k) ?? { type: v === null ? 'null' : typeof v, chars: 0, n: 0 }
      if (typeof v === 'string') {
        s.type = 'string'
        s.chars += v.length
        s.n++
      }
      this.seen.set(k, s)
    }
  }

  resolve(record: Record<string, unknown>, where: string): string[] {
    if (!this.fields) {
      const found = TEXT_FIELD_CANDIDATES.find((f) => typeof record[f] === 'string')
      if (!found) {
        const names = Object.keys(record)
        throw new DatasetInputError(
          `${where}: no text field found (looked for ${TEXT_FIELD_CANDIDATES.map((f) => `"${f}"`).join(', ')}). ` +
            `The records have the fields: ${names.length ? names.map((n) => `"${n}"`).join(', ') : '(none)'}. ` +
            'Choose the text field with --field NAME (or several joined: --field title,text).',
        )
      }
      this.fields = [found]
    }
    this.announce()
    return this.fields
  }

  announce(force = false): void {
    if ((this.announced && !force) || !this.ctx.onSchema) return
    this.announced = true
    this.ctx.onSchema({
      file: this.file,
      fields: [...this.seen].map(([name, s]) => ({ name, type: s.type, avgChars: s.n ? Math.round(s.chars / s.n) : 0 })),
      textFields: this.fields ?? [],
    })
  }

  /** The record's text, or null (and a bad-record report) when it has none. */
  text(record: unknown, where: string): string | null {
    if (typeof record === 'string') return record // an array/lines of plain strings
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      this.ctx.log.badRecord(`${where}: a record must be a JSON object (or a string), got ${describe(record)}`)
      return null
    }
    const rec = record as Record<string, unknown>
    this.observe(rec)
    const fields = this.resolve(rec, where)
    const parts: string[] = []
    const missing: string[] = []
    for (const f of fields) {
      const v = rec[f]
      if (typeof v === 'string') {
        if (v) parts.push(v)
      } else if (v === undefined || v === null) missing.push(f)
      else {
        this.ctx.log.badRecord(`${where}: the field "${f}" holds ${describe(v)}, not text`)
        return null
      }
    }
    if (missing.length === fields.length) {
      const names = Object.keys(rec)
      this.ctx.log.badRecord(
        `${where}: the record has no field ${fields.map((f) => `"${f}"`).join(' or ')} ` +
          `(it has: ${names.length ? names.map((n) => `"${n}"`).join(', ') : 'no fields'})`,
      )
      return null
    }
    return parts.join(this.ctx.options.joinWith)
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`
}

async function* readJsonLines(file: SourceFile, base: number, ctx: ReadContext): AsyncGenerator<DocPiece> {
  if (file.sizeBytes === 0) throw new DatasetInputError(`${file.path} is empty (0 bytes): there is nothing to import.`)
  const fh = await openForRead(file)
  const picker = new FieldPicker(ctx, file.path)
  const max = ctx.options.maxRecordBytes
  let parts: Buffer[] = []
  let partBytes = 0
  let oversize = false
  let line = 0
  let fileOffset = 0 // offset of the current chunk
  let lineStart = 0 // file offset where the current line starts
  let records = 0

  const handleLine = function* (bytes: Buffer, endOffset: number): Generator<DocPiece> {
    line++
    const where = `${file.path}, line ${line}`
    let start = 0
    if (line === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3
    const body = start ? bytes.subarray(start) : bytes
    if (body.every((b) => b === 0x20 || b === 0x09 || b === 0x0d)) return // blank line
    if (!isUtf8(body)) {
      ctx.log.badRecord(`${where}: not valid UTF-8 at byte offset ${lineStart + start + firstInvalidUtf8(body)}`)
      return
    }
    let record: unknown
    try {
      record = JSON.parse(body.toString('utf8'))
    } catch (err) {
      ctx.log.badRecord(`${where}: not valid JSON (${(err as Error).message})`)
      return
    }
    const text = picker.text(record, where)
    if (text === null) return
    records++
    yield* documentFromText(text, ctx, base + endOffset, where)
  }

  try {
    for await (const chunk of readChunks(fh, ctx.signal)) {
      const nul = chunk.indexOf(0)
      if (nul >= 0) throw binaryError(file.path, fileOffset + nul)
      let start = 0
      for (;;) {
        const nl = chunk.indexOf(10, start)
        const end = nl < 0 ? chunk.length : nl
        if (!oversize) {
          if (partBytes + (end - start) > max) {
            oversize = true
            parts = []
          } else if (end > start) parts.push(chunk.subarray(start, end))
        }
        partBytes += end - start
        if (nl < 0) break
        if (oversize) {
          line++
          ctx.log.badRecord(
            `${file.path}, line ${line}: the line is ${formatMiB(partBytes)} long, over the ${formatMiB(max)} limit for one record ` +
              '(split such texts into several records)',
          )
        } else {
          yield* handleLine(parts.length === 1 ? parts[0]! : Buffer.concat(parts), fileOffset + nl + 1)
        }
        parts = []
        partBytes = 0
        oversize = false
        start = nl + 1
        lineStart = fileOffset + start
      }
      fileOffset += chunk.length
    }
    if (oversize) {
      line++
      ctx.log.badRecord(
        `${file.path}, line ${line}: the line is ${formatMiB(partBytes)} long, over the ${formatMiB(max)} limit for one record ` +
          '(split such texts into several records)',
      )
    } else if (partBytes > 0) yield* handleLine(Buffer.concat(parts), fileOffset)
  } finally {
    await fh.close()
  }
  picker.announce()
  if (records === 0 && line > 0 && ctx.log.skippedRecords === 0 && ctx.log.emptyDocuments === 0) {
    throw new DatasetInputError(`${file.path} holds no records (only blank lines).`)
  }
}

function formatMiB(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0)} MiB`
}

async function* readJsonArray(file: SourceFile, base: number, ctx: ReadContext): AsyncGenerator<DocPiece> {
  if (file.sizeBytes === 0) throw new DatasetInputError(`${file.path} is empty (0 bytes): there is nothing to import.`)
  const fh = await openForRead(file)
  const picker = new FieldPicker(ctx, file.path)
  const scanner = new JsonArrayStream(ctx.options.maxRecordBytes)
  let offset = 0
  let index = 0
  try {
    for await (const chunk of readChunks(fh, ctx.signal)) {
      const nul = chunk.indexOf(0)
      if (nul >= 0) throw binaryError(file.path, offset + nul)
      let items
      try {
        items = [...scanner.push(chunk)]
      } catch (err) {
        throw jsonStructureError(file, err)
      }
      offset += chunk.length
      for (const item of items) {
        index++
        const where = `${file.path}, record ${index} (line ${item.line})`
        if (item.kind === 'oversize') {
          ctx.log.badRecord(`${where}: the record is ${formatMiB(item.bytes)}, over the ${formatMiB(ctx.options.maxRecordBytes)} limit`)
          continue
        }
        if (!isUtf8(item.bytes)) {
          ctx.log.badRecord(`${where}: not valid UTF-8`)
          continue
        }
        let record: unknown
        try {
          record = JSON.parse(item.bytes.toString('utf8'))
        } catch (err) {
          ctx.log.badRecord(`${where}: not valid JSON (${(err as Error).message})`)
          continue
        }
        const text = picker.text(record, where)
        if (text !== null) yield* documentFromText(text, ctx, base + offset, where)
      }
    }
    try {
      scanner.end()
    } catch (err) {
      throw jsonStructureError(file, err)
    }
  } finally {
    await fh.close()
  }
  if (!scanner.foundArray) {
    throw new DatasetInputError(
      `${file.path}: the top-level object has no "data" array of records (its keys: ${scanner.keys.map((k) => `"${k}"`).join(', ') || 'none'}). ` +
        'A .json dataset must be an array of records, or an object with the records in "data".',
    )
  }
  picker.announce()
}

function jsonStructureError(file: SourceFile, err: unknown): Error {
  if (err instanceof JsonArrayStreamError) {
    return new DatasetInputError(
      `${file.path}, line ${err.line} (byte offset ${err.offset}): not valid JSON: ${err.message}. ` +
        'A .json dataset must be an array of records or {"data": [...]}; for one record per line use .jsonl.',
    )
  }
  return err as Error
}

async function* readCsv(file: SourceFile, base: number, ctx: ReadContext, delimiter: string): AsyncGenerator<DocPiece> {
  if (file.sizeBytes === 0) throw new DatasetInputError(`${file.path} is empty (0 bytes): there is nothing to import.`)
  const picker = new FieldPicker(ctx, file.path)
  const skip = ctx.options.onBadLine === 'skip'
  const parser = parseCsv({
    columns: true, // the first row names the fields
    delimiter,
    info: true,
    skip_empty_lines: true,
    max_record_size: ctx.options.maxRecordBytes,
    skip_records_with_error: skip,
    on_skip: (err) => {
      ctx.log.skippedRecords++
      ctx.log.note(`${file.path}: ${err?.message ?? 'a bad row'}`)
      return undefined
    },
  })
  // The producer decodes (and so validates) the bytes and feeds the parser with backpressure; it
  // is stopped through `stop` when the consumer leaves early (preview).
  const stop = new AbortController()
  let bytesFed = 0
  const producer = (async () => {
    const fh = await openForRead(file)
    const decoder = new Utf8ChunkDecoder(file.path)
    try {
      for await (const chunk of readChunks(fh, ctx.signal)) {
        const text = decoder.push(chunk)
        bytesFed = decoder.bytesDecoded
        if (text && !parser.write(text)) await once(parser, 'drain', { signal: stop.signal })
      }
      const tail = decoder.end()
      if (tail) parser.write(tail)
      parser.end()
    } finally {
      await fh.close()
    }
  })().catch((err) => {
    if (!stop.signal.aborted) parser.destroy(err as Error)
  })
  try {
    for await (const item of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
      const where = `${file.path}, line ${item.info.lines}`
      const text = picker.text(item.record, where)
      if (text !== null) yield* documentFromText(text, ctx, base + bytesFed, where)
    }
  } catch (err) {
    if (err instanceof DatasetInputError) throw err
    const e = err as Error & { code?: string; lines?: number }
    throw new DatasetInputError(
      `${file.path}: not valid CSV (${e.message}). Check quoting on that line (RFC 4180: fields with commas, quotes or ` +
        'line breaks are enclosed in double quotes, and quotes inside are doubled), or import with "skip bad lines" (CLI: --skip-bad).',
    )
  } finally {
    stop.abort()
    parser.destroy()
    await producer
  }
  picker.announce()
}

function fileAsyncBuffer(fh: FileHandle, size: number): AsyncBuffer {
  return {
    byteLength: size,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const stop = end ?? size
      const buf = new Uint8Array(stop - start)
      let done = 0
      while (done < buf.length) {
        const { bytesRead } = await fh.read(buf, done, buf.length - done, start + done)
        if (bytesRead === 0) break
        done += bytesRead
      }
      return buf.buffer
    },
  }
}

async function* readParquet(file: SourceFile, base: number, ctx: ReadContext): AsyncGenerator<DocPiece> {
  if (file.sizeBytes === 0) throw new DatasetInputError(`${file.path} is empty (0 bytes): there is nothing to import.`)
  const fh = await openForRead(file)
  try {
    const buffer = fileAsyncBuffer(fh, file.sizeBytes)
    let metadata
    try {
      metadata = await parquetMetadataAsync(buffer)
    } catch (err) {
      throw new DatasetInputError(`${file.path} is not a readable Parquet file (${(err as Error).message}).`)
    }
    const schema = parquetSchema(metadata)
    const columns = schema.children.map((c) => c.element.name)
    const picker = new FieldPicker(ctx, file.path)
    // Resolve the fields from the schema, so only the text columns are decoded.
    const stub: Record<string, unknown> = {}
    for (const c of schema.children) stub[c.element.name] = c.element.type === 'BYTE_ARRAY' ? '' : 0
    picker.observe(stub)
    const fields = picker.resolve(stub, file.path)
    const missing = fields.filter((f) => !columns.includes(f))
    if (missing.length) {
      throw new DatasetInputError(
        `${file.path}: the Parquet file has no column ${missing.map((m) => `"${m}"`).join(', ')} ` +
          `(it has: ${columns.map((c) => `"${c}"`).join(', ')}). Choose the text column with --field NAME.`,
      )
    }
    const totalRows = Number(metadata.num_rows)
    let rowStart = 0
    for (const group of metadata.row_groups) {
      ctx.signal?.throwIfAborted()
      const rows = Number(group.num_rows)
      const rowEnd = rowStart + rows
      const objects = (await parquetReadObjects({ file: buffer, metadata, columns: fields, rowStart, rowEnd })) as Record<
        string,
        unknown
      >[]
      const bytesEnd = base + Math.round((file.sizeBytes * rowEnd) / Math.max(1, totalRows))
      for (let r = 0; r < objects.length; r++) {
        const where = `${file.path}, row ${rowStart + r + 1}`
        const text = picker.text(objects[r], where)
        if (text !== null) yield* documentFromText(text, ctx, bytesEnd, where)
      }
      rowStart = rowEnd
    }
    picker.announce(true)
  } finally {
    await fh.close()
  }
}
