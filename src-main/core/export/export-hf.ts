// An engine model -> a Hugging Face folder transformers loads: the engine writes config.json
// (with the new n_positions and, for ruGPT3XL-style models, the sparse settings) and the
// safetensors (sharded above maxShardBytes, with the index file); this adds the tokenizer files
// and any remote-code files of the source folder, and a README.md model card. The folder is built
// under a temporary name and renamed at the end, so it exists only when complete.
import { copyFile, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { ExportCard } from '../../api/contract.ts'
import type { EngineModel } from '../../engine/model.ts'
import { renderModelCard } from './model-card.ts'

export const DEFAULT_MAX_SHARD_BYTES = 2 * 1024 ** 3 // 2 GiB, about what transformers' own save does

// Files of the source folder an exported model needs besides what the engine writes.
const COPIED = new Set([
  'tokenizer.json',
  'vocab.json',
  'merges.txt',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'generation_config.json',
])

export interface HfExportOptions {
  model: EngineModel
  sourceDir: string // the model folder: tokenizer files, remote code
  out: string
  name: string
  baseContext: number
  checkpoint: { path: string; step: number } | null
  card?: ExportCard
  maxShardBytes?: number
  onProgress?: (fraction: number, detail: string) => void
  signal?: AbortSignal
}

export interface HfExportResult {
  path: string
  files: string[]
  bytes: number
}

function checkCancelled(signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason ?? new Error('cancelled')
}

export async function exportHf(opts: HfExportOptions): Promise<HfExportResult> {
  const out = path.resolve(opts.out)
  const tmp = `${out}.partial-${process.pid}`
  await rm(tmp, { recursive: true, force: true })
  try {
    opts.onProgress?.(0.05, 'writing config.json and the safetensors')
    // One native call with no progress of its own; the UI shows it as an indeterminate step.
    await opts.model.save(tmp, { maxShardBytes: opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES })
    checkCancelled(opts.signal)
    opts.onProgress?.(0.85, 'copying the tokenizer files')
    const source = await readdir(opts.sourceDir)
    const newContext = opts.model.config.nPositions
    for (const f of source) {
      if (f === 'tokenizer_config.json') {
        // transformers warns about inputs longer than model_max_length: follow the new context
        // when it named the old one.
        const cfg = JSON.parse(await readFile(path.join(opts.sourceDir, f), 'utf8')) as Record<string, unknown>
        if (cfg.model_max_length === opts.baseContext) cfg.model_max_length = newContext
        await writeFile(path.join(tmp, f), JSON.stringify(cfg, null, 2) + '\n')
      } else if (COPIED.has(f) || f.endsWith('.py')) {
        // *.py: the modeling code of remote-code models (the ruGPT3XL port), named in config.json's auto_map.
        await copyFile(path.join(opts.sourceDir, f), path.join(tmp, f))
      }
    }
    const written = (await readdir(tmp)).filter((f) => f !== 'README.md').sort()
    const cfg = opts.model.config
    const architecture = await readArchitecture(path.join(tmp, 'config.json'))
    opts.onProgress?.(0.95, 'writing the model card')
    const files = [...written, 'README.md'].sort()
    await writeFile(
      path.join(tmp, 'README.md'),
      renderModelCard({
        name: opts.name,
        architecture,
        config: cfg,
        parameters: opts.model.paramCount,
        baseContext: opts.baseContext,
        checkpoint: opts.checkpoint,
        card: opts.card,
        files,
      }),
    )
    checkCancelled(opts.signal)
    await rm(out, { recursive: true, force: true }) // the caller checked it is absent or may be replaced
    await rename(tmp, out)
    let bytes = 0
    for (const f of files) bytes += (await stat(path.join(out, f))).size
    opts.onProgress?.(1, 'done')
    return { path: out, files, bytes }
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined)
    throw e
  }
}

async function readArchitecture(configPath: string): Promise<string> {
  try {
    const cfg = JSON.parse(await readFile(configPath, 'utf8')) as { architectures?: unknown }
    if (Array.isArray(cfg.architectures) && typeof cfg.architectures[0] === 'string') return cfg.architectures[0]
  } catch {
    // the engine always writes it; a card without the class name is still a card
  }
  return 'GPT2LMHeadModel'
}
