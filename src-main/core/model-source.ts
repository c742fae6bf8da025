// Opening "a model" the way export and chat both need it: a model folder, or a training
// checkpoint together with the folder of the model it was trained from. A checkpoint of a later
// stage has more position rows (and maybe other attention patterns) than that folder, so the
// folder's model is first brought to the checkpoint's shape (positions tiled, patterns set) and
// then the checkpoint's weights replace it. The runs code (issue 7) resolves run ids to these.
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { ApiError } from '../api/contract.ts'
import { EngineError } from '../engine/errors.ts'
import { checkModelFolder } from '../engine/inspect.ts'
import { EngineModel, type AttentionPattern, type Backend } from '../engine/model.ts'
import { loadNative } from '../engine/native.ts'
import { readSafetensorsHeader } from './safetensors.ts'

export type ModelSource = { kind: 'model'; path: string } | { kind: 'checkpoint'; modelDir: string; checkpoint: string }

export interface CheckpointInfo {
  path: string
  step: number
  architecture: string | null
  nPositions: number
  vocabSize: number
  attention: AttentionPattern[]
}

// What the checkpoint's __metadata__ says (see native/engine/src/io/checkpoint.hpp), without
// reading its tensors.
export async function readCheckpointInfo(file: string): Promise<CheckpointInfo> {
  const abs = path.resolve(file)
  let header
  try {
    header = await readSafetensorsHeader(abs)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new ApiError('not_found', `${abs}: no such checkpoint file`)
    throw new ApiError('bad_input', `${abs} is not a readable checkpoint: ${(e as Error).message}`)
  }
  const meta = header.metadata
  if (meta.format !== 'longctx-checkpoint' || !meta.config)
    throw new ApiError('bad_input', `${abs} is not a LongCtx checkpoint (its metadata has no "format": "longctx-checkpoint")`)
  let cfg: { n_positions?: unknown; vocab_size?: unknown; attn_kind?: unknown; attn_window?: unknown }
  try {
    cfg = JSON.parse(meta.config)
  } catch {
    throw new ApiError('bad_input', `${abs}: the checkpoint's config metadata is not JSON`)
  }
  const kinds = Array.isArray(cfg.attn_kind) ? (cfg.attn_kind as number[]) : []
  const windows = Array.isArray(cfg.attn_window) ? (cfg.attn_window as number[]) : []
  const attention = kinds.map((k, l): AttentionPattern => (k === 2 ? 'sparse' : k === 1 ? `window:${windows[l] ?? 0}` : 'dense'))
  return {
    path: abs,
    step: Number(meta.step ?? 0),
    architecture: meta.architecture ?? null,
    nPositions: Number(cfg.n_positions),
    vocabSize: Number(cfg.vocab_size),
    attention,
  }
}

export type BackendPreference = Backend | 'auto'

// 'auto' takes CUDA when it is compiled in and usable, else the CPU (same rule as the CLI).
export async function loadEngineModel(dir: string, backend: BackendPreference = 'auto'): Promise<EngineModel> {
  const abs = await checkModelFolder(dir)
  if (backend === 'auto') {
    if (loadNative().backendsAvailable().includes('cuda')) {
      try {
        return await EngineModel.load(abs, { backend: 'cuda' })
      } catch (e) {
        if (!(e instanceof EngineError && (e.engineCode === 'LCX_ERR_BACKEND' || e.engineCode === 'LCX_ERR_OOM'))) throw e
      }
    }
    backend = 'cpu'
  }
  return EngineModel.load(abs, { backend })
}

export interface OpenedModel {
  model: EngineModel
  modelDir: string // tokenizer files and the original config.json live here
  name: string
  checkpoint: CheckpointInfo | null
  baseContext: number // position rows of the model folder (before the checkpoint's extension)
}

// A model folder's display name (chat, GGUF metadata): its base name, except that a run's final/
// folder (what a completed run's summary hands out) is named after its run's plan, since every
// completed run's folder is called "final".
async function folderName(dir: string): Promise<string> {
  if (path.basename(dir) === 'final') {
    try {
      const plan = JSON.parse(await readFile(path.join(path.dirname(dir), 'plan.json'), 'utf8')) as { name?: unknown }
      if (typeof plan.name === 'string' && plan.name.trim()) return plan.name.trim()
    } catch {
      // not a run folder (or no readable plan): the base name will do
    }
  }
  return path.basename(dir)
}

export async function openModelSource(source: ModelSource, backend: BackendPreference = 'auto'): Promise<OpenedModel> {
  if (source.kind === 'model') {
    const model = await loadEngineModel(source.path, backend)
    const dir = path.resolve(source.path)
    return { model, modelDir: dir, name: await folderName(dir), checkpoint: null, baseContext: model.config.nPositions }
  }
  const st = await stat(source.checkpoint).catch(() => null)
  if (!st?.isFile()) throw new ApiError('not_found', `${path.resolve(source.checkpoint)}: no such checkpoint file`)
  const info = await readCheckpointInfo(source.checkpoint)
  const model = await loadEngineModel(source.modelDir, backend)
  try {
    const cfg = model.config
    const baseContext = cfg.nPositions
    if (info.nPositions < cfg.nPositions)
      throw new ApiError(
        'bad_input',
        `the checkpoint has ${info.nPositions} position rows but the model folder already has ${cfg.nPositions}; ` +
          'pick the model folder the run started from',
      )
    // Tiled rows are placeholders: the checkpoint overwrites every parameter right after.
    if (info.nPositions > cfg.nPositions) await model.extendPositions(info.nPositions, 'tile')
    for (let l = 0; l < Math.min(info.attention.length, cfg.nLayer); l++)
      if (info.attention[l] !== cfg.attention[l]) await model.setAttention(l, info.attention[l]!)
    await model.loadCheckpoint(info.path)
    const dir = path.resolve(source.modelDir)
    const name = `${path.basename(dir)}-${info.nPositions}-step${info.step}`
    return { model, modelDir: dir, name, checkpoint: info, baseContext }
  } catch (e) {
    model.dispose()
    throw e
  }
}

export function describeSource(source: ModelSource): string {
  return source.kind === 'model' ? source.path : `${source.checkpoint} (model ${source.modelDir})`
}
