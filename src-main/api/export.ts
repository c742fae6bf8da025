// The export part of the API contract: exporting a model folder or a checkpoint as a Hugging Face
// folder or a GGUF file, in the background with 'export.progress' events. contract.ts re-exports
// everything here.
import { z } from 'zod'
import type { ApiErrorBody } from './errors.ts'

const absolutePath = z
  .string()
  .min(1, 'a path is required')
  .max(4096, 'path too long')
  .refine((p) => !p.includes('\0'), 'path contains a NUL byte')

// A model the engine can open: an HF model folder, or a training checkpoint plus the folder of the
// model it was trained from (tokenizer, original config.json).
export const modelSourceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('model'), path: absolutePath }).strict(),
  z.object({ kind: z.literal('checkpoint'), modelDir: absolutePath, checkpoint: absolutePath }).strict(),
])
export type ModelSourceArg = z.infer<typeof modelSourceSchema>

// What the runs code knows and the model card shows: the plan and the perplexity table.
export const exportCardSchema = z
  .object({
    title: z.string().max(200).optional(),
    baseModel: z.string().max(500).optional(),
    description: z.string().max(5000).optional(),
    plan: z
      .object({
        stages: z
          .array(
            z
              .object({
                name: z.string().max(100).optional(),
                context: z.number().int().positive(),
                steps: z.number().int().nonnegative().optional(),
                tokens: z.number().nonnegative().optional(),
                learningRate: z.number().nonnegative().optional(),
              })
              .strict(),
          )
          .max(32),
        positionInit: z.string().max(50).optional(), // tile | interpolate | random
        longFraction: z.number().min(0).max(1).optional(),
        dataset: z.string().max(500).optional(),
      })
      .strict()
      .optional(),
    perplexity: z
      .array(
        z.object({ window: z.number().int().positive(), baseline: z.number().positive().nullable().optional(), value: z.number().positive() }).strict(),
      )
      .max(32)
      .optional(),
    notes: z.array(z.string().max(1000)).max(20).optional(),
  })
  .strict()
export type ExportCard = z.infer<typeof exportCardSchema>

export type ExportFormat = 'hf' | 'gguf'
export type GgufType = 'f16' | 'q8_0'

export interface ExportResult {
  format: ExportFormat
  path: string // the folder (hf) or the .gguf file
  bytes: number
  files: string[] // names inside the folder (hf) or [basename] (gguf)
  contextLength: number // position rows of the exported model
  warnings: string[] // e.g. the dense-runtime warning of block-sparse models in GGUF
  elapsedMs: number
}

export interface ExportProgress {
  jobId: string
  format: ExportFormat
  phase: 'loading' | 'writing' | 'done' | 'failed' | 'cancelled'
  fraction: number // 0..1
  detail: string // e.g. "writing blk.3.ffn_up.weight"
  done: boolean
  result?: ExportResult
  error?: ApiErrorBody
}

export interface ExportJob {
  jobId: string
  source: ModelSourceArg
  format: ExportFormat
  type: GgufType | null
  out: string
  startedAt: string // ISO time
  progress: ExportProgress
}

export const exportMethodArgs = {
  start: z
    .object({
      source: modelSourceSchema,
      format: z.enum(['hf', 'gguf']),
      type: z.enum(['f16', 'q8_0']).default('f16'), // GGUF only
      out: absolutePath, // a folder to create (hf) or a .gguf file (gguf)
      name: z.string().max(200).optional(),
      card: exportCardSchema.optional(),
      overwrite: z.boolean().default(false),
      maxShardBytes: z.number().int().min(1024 * 1024).optional(), // hf; default 2 GiB
    })
    .strict(),
  cancel: z.object({ jobId: z.string().min(1).max(100) }).strict(),
  jobs: z.object({}).strict(),
}
