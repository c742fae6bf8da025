// Datasets: import (txt, folders, jsonl, json, csv/tsv, parquet), tokenization on all cores with
// the model's own tokenizer, the on-disk token store, statistics, the train/held-out split, and
// the long/short example sampler the training stages consume.
export { importDataset, removeStaleImports, splitFieldList, type ImportRequest, type ImportEnv, type ImportResult, type ImportProgress } from './import.ts'
export { previewDataset, type PreviewRequest } from './preview.ts'
export { DatasetService, summarize, type DatasetServiceOptions } from './service.ts'
export { DatasetReader, readManifest, type DatasetManifest, type WriteIO } from './store.ts'
export {
  DatasetSampler,
  heldOutWindows,
  countHeldOutWindows,
  type SamplerOptions,
  type SamplerState,
  type SamplerRatio,
  type Example,
  type Batch,
  type HeldOutWindow,
} from './sampler.ts'
export { computeStats, contextWarnings, chooseHeldOut, DEFAULT_SPLIT, type SplitOptions } from './stats.ts'
export { DatasetInputError } from './text-decoding.ts'
