// Model import: what the wizard's model step shows. The engine reads config.json and the
// safetensors headers (no weights) and the tokenizer files are looked up beside them.
import { inspectModel } from '../engine/inspect.ts'
import type { ModelInfo } from '../api/contract.ts'

export function inspectModelFolder(path: string): Promise<ModelInfo> {
  return inspectModel(path)
}
