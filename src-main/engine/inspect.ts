// Model import: what the wizard's model step and `longctx inspect` show, read without loading
// the weights (the engine reads config.json and the safetensors headers; the tokenizer files
// are looked up beside them).
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { ApiError, type ModelInfo } from '../api/contract.ts'
import { findTokenizerFiles } from '../core/tokenizer/index.ts'
import { engineCall } from './errors.ts'
import { loadNative } from './native.ts'

// The folder must exist and be a folder before the engine is asked: its message for a
// missing config.json would otherwise hide the simpler mistake of a wrong path.
export async function checkModelFolder(dir: string): Promise<string> {
  const abs = path.resolve(dir)
  let st
  try {
    st = await stat(abs)
  } catch {
    throw new ApiError('not_found', `${abs}: no such folder; pick the folder that holds the model's config.json`)
  }
  if (!st.isDirectory())
    throw new ApiError('bad_input', `${abs} is a file; pick the folder that holds it (with config.json and the safetensors files)`)
  return abs
}

export async function inspectModel(dir: string): Promise<ModelInfo> {
  const abs = await checkModelFolder(dir)
  const info = await engineCall(() => loadNative().inspect(abs))
  const c = info.config
  const tokenizer = await findTokenizerFiles(abs)
  return {
    path: abs,
    architecture: info.architecture,
    family: c.arch,
    parameters: info.parameters,
    layers: c.nLayer,
    heads: c.nHead,
    width: c.nEmbd,
    contextLength: c.nPositions,
    vocabSize: c.vocabSize,
    attention: c.attention,
    sparse: c.attention.includes('sparse')
      ? {
          block: c.sparse.block,
          numLocalBlocks: c.sparse.numLocalBlocks,
          numGlobalBlocks: c.sparse.numGlobalBlocks,
          differentLayoutPerHead: c.sparse.differentLayoutPerHead,
          numDifferentGlobalPatterns: c.sparse.numDifferentGlobalPatterns,
        }
      : null,
    tokenizer,
    dtype: info.dtype,
    sizeOnDiskBytes: info.bytesOnDisk,
    files: info.numFiles,
  }
}
