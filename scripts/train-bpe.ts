// Trains a GPT-2-style byte-level BPE tokenizer on a corpus and writes vocab.json, merges.txt and
// tokenizer.json (HF format) into a folder.
//
//   npx tsx scripts/train-bpe.ts --out DIR [--merges 255] [--corpus resources/corpus/kjv-chapters.jsonl]
//
// The vocabulary is the 256 byte tokens, then the merges in order, then <|endoftext|>, so the
// default gives 512 tokens with <|endoftext|> = 511.

import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { bpeToFiles, trainByteLevelBpe } from '../src-main/core/tokenizer/train-bpe.ts'
import { DEFAULT_CORPUS, readDocuments } from './corpus.ts'

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    merges: { type: 'string', default: '255' },
    corpus: { type: 'string', default: DEFAULT_CORPUS },
    field: { type: 'string', default: 'text' },
    'min-frequency': { type: 'string', default: '2' },
  },
})
if (!values.out) {
  console.error('usage: npx tsx scripts/train-bpe.ts --out DIR [--merges N] [--corpus FILE_OR_DIR] [--field text] [--min-frequency 2]')
  process.exit(2)
}
const started = performance.now()
const docs = readDocuments(values.corpus, values.field)
const bpe = trainByteLevelBpe(docs, { merges: Number(values.merges), minFrequency: Number(values['min-frequency']) })
mkdirSync(values.out, { recursive: true })
for (const [name, text] of Object.entries(bpeToFiles(bpe))) writeFileSync(join(values.out, name), text)
console.log(
  `${values.out}: ${bpe.tokens.length} tokens (${bpe.merges.length} merges) from ${docs.length} documents in ${((performance.now() - started) / 1000).toFixed(1)} s`,
)
