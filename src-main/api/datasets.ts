// The datasets part of the API contract: value types the renderer shows and the argument schemas
// of the datasets.* methods. Kept in its own file so contract.ts stays readable; contract.ts
// re-exports everything here.
import { z } from 'zod'

/** The context lengths the statistics report availability for. */
export const CONTEXT_MARKS = [2048, 4096, 8192, 16384] as const
export type ContextMark = `${(typeof CONTEXT_MARKS)[number]}`

export interface LengthBucket {
  label: string // '<256', '256-512', …, '>=16k'
  minTokens: number // inclusive
  maxTokens: number | null // exclusive; null = no upper bound
  documents: number
  tokens: number
}

export interface DocumentsAndTokens {
  documents: number
  tokens: number
}

/**
 * Statistics of an imported dataset. The top-level figures (documents, tokens, lengthHistogram,
 * atLeast) describe the TRAINING split, which is what the sampler draws from; the held-out split
 * (reserved for perplexity) is reported apart, and `total` is both together.
 */
export interface DatasetStats {
  documents: number
  tokens: number
  total: DocumentsAndTokens
  heldOut: DocumentsAndTokens & {
    /** Non-overlapping perplexity windows of each length the held-out documents give. */
    windows: Record<ContextMark, number>
  }
  lengthHistogram: LengthBucket[]
  /** Documents at least N tokens long, and the tokens they hold. */
  atLeast: Record<ContextMark, DocumentsAndTokens>
  longestDocumentTokens: number
  medianDocumentTokens: number
  meanDocumentTokens: number
  /** Plain-language warnings, e.g. that the data cannot teach an 8k context. */
  warnings: string[]
}

export type DatasetFormat = 'txt' | 'folder' | 'jsonl' | 'json' | 'csv' | 'tsv' | 'parquet'

export interface DatasetSummary {
  id: string
  name: string // the source's file or folder name
  createdAt: string // ISO time
  source: { path: string; format: DatasetFormat; files: number; bytes: number; textFields: string[] | null }
  tokenizer: { hash: string; kind: string; vocabSize: number; modelDir: string }
  stats: DatasetStats
  sizeOnDiskBytes: number
  /** What was skipped or worked around during import (bad lines, empty files…). */
  importNotes: string[]
}

export interface DatasetPreviewDocument {
  index: number
  where: string // "file.jsonl, line 3" or "folder/a.txt"
  chars: number | null // null when the document is longer than the preview read
  text: string // the start of the text
  truncated: boolean
}

export interface DatasetPreview {
  path: string
  format: DatasetFormat
  files: number
  totalBytes: number
  ignoredFiles: number
  /** Fields of the records (record formats only), with the text field(s) that would be used. */
  fields: Array<{ name: string; type: string; avgChars: number }>
  textFields: string[] | null
  documents: DatasetPreviewDocument[]
  /** Problems met in the previewed part (the import may find more). */
  notes: string[]
}

export type DatasetImportPhase = 'scanning' | 'hashing' | 'tokenizing' | 'finalizing' | 'done' | 'cancelled' | 'failed'

export interface DatasetImportProgress {
  jobId: string
  phase: DatasetImportPhase
  bytesDone: number
  bytesTotal: number
  documents: number
  tokens: number
  mbPerSec: number
  etaSeconds: number | null
  done: boolean
  error?: string
  datasetId?: string
  /** True when the dataset was already imported (same files, tokenizer and options). */
  cached?: boolean
}

// ---- argument schemas ----------------------------------------------------------------------

const pathArg = z
  .string()
  .min(1, 'a path is required')
  .max(4096, 'path too long')
  .refine((p) => !p.includes('\0'), 'path contains a NUL byte')

/** One field name, or several to join (e.g. ["title", "text"]). */
const fieldArg = z.union([z.string().min(1).max(200), z.array(z.string().min(1).max(200)).min(1).max(16)])

export const datasetMethodArgs = {
  preview: z
    .object({
      path: pathArg,
      field: fieldArg.optional(),
      separator: z.string().max(200).nullable().optional(),
      limit: z.number().int().min(1).max(100).default(5),
    })
    .strict(),
  import: z
    .object({
      path: pathArg,
      modelDir: pathArg,
      field: fieldArg.optional(),
      separator: z.string().max(200).nullable().optional(),
      onBadLine: z.enum(['skip', 'stop']).default('stop'),
      heldOutFraction: z.number().min(0).max(0.5).optional(),
      seed: z.number().int().min(0).max(2 ** 32 - 1).optional(),
    })
    .strict(),
  cancel: z.object({ jobId: z.string().min(1).max(100) }).strict(),
  list: z.object({}).strict(),
  get: z
    .object({
      id: z.string().regex(/^[0-9a-f]{8,64}$/, 'not a dataset id'),
      /** When given, stats.warnings say whether the data can teach this context (else 4k and 8k). */
      targetContext: z.number().int().min(2).max(1 << 22).optional(),
    })
    .strict(),
}
