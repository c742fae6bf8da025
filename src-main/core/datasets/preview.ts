// A look at a source before importing it: its format, the fields of its records (and which would
// be used as text), and the start of the first few documents. It reads only as much as those
// documents need, so previewing a 10 GB file is instant.
import { resolve } from 'node:path'
import type { DatasetPreview, DatasetPreviewDocument } from '../../api/datasets.ts'
import { splitFieldList } from './import.ts'
import { DEFAULT_READ_OPTIONS, ImportLog, readDocuments, type SchemaInfo } from './readers.ts'
import { resolveSource } from './sources.ts'

export interface PreviewRequest {
  path: string
  field?: string | string[]
  separator?: string | null
  limit?: number
  /** Characters of each document shown. */
  maxChars?: number
}

export async function previewDataset(req: PreviewRequest): Promise<DatasetPreview> {
  const path = resolve(req.path)
  const plan = await resolveSource(path)
  const limit = req.limit ?? 5
  const maxChars = req.maxChars ?? 600
  // The preview never stops on a bad line: it shows what the import would meet.
  const log = new ImportLog('skip')
  let schema: SchemaInfo | null = null
  const documents: DatasetPreviewDocument[] = []
  let text = ''
  let chars = 0
  let truncated = false
  let readingChars = 0
  const ctx = {
    options: {
      ...DEFAULT_READ_OPTIONS,
      fields: req.field === undefined ? null : Array.isArray(req.field) ? req.field : splitFieldList(req.field),
      separator: plan.format === 'txt' ? (req.separator ?? null) : null,
      onBadLine: 'skip' as const,
      maxPieceChars: 64 * 1024,
    },
    log,
    onSchema: (s: SchemaInfo) => {
      schema ??= s
    },
  }
  for await (const piece of readDocuments(plan, ctx)) {
    if (piece.discard) {
      text = ''
      chars = 0
      truncated = false
      readingChars = 0
      continue
    }
    readingChars += piece.text.length
    if (text.length < maxChars) text += piece.text.slice(0, maxChars - text.length)
    chars += piece.text.length
    if (chars > maxChars) truncated = true
    if (!piece.last) {
      // Do not read a huge document to its end just to count its characters.
      if (readingChars > 4 * maxChars + 65536) {
        documents.push({ index: documents.length, where: '(a long document)', chars: null, text, truncated: true })
        break
      }
      continue
    }
    documents.push({ index: documents.length, where: piece.where ?? '', chars, text, truncated })
    text = ''
    chars = 0
    truncated = false
    readingChars = 0
    if (documents.length >= limit) break
  }
  const s = schema as SchemaInfo | null
  return {
    path,
    format: plan.format,
    files: plan.files.length,
    totalBytes: plan.totalBytes,
    ignoredFiles: plan.ignoredFiles,
    fields: s?.fields ?? [],
    textFields: s?.textFields ?? null,
    documents,
    notes: [...log.summary(), ...log.messages],
  }
}
