// First half of making test/fixtures/tokenizer-golden.json (HF's ids for the tokenizer tests):
// writes the tokenizers and texts into a folder that scripts/make-tokenizer-golden.py then encodes
// with HF on a machine that has transformers (see test/fixtures/README.md).
//
//   npx tsx scripts/tokenizer-golden-inputs.ts OUT_DIR

import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { edgeTokenizerJsons, EDGE_TEXTS, randomTexts, TRICKY } from '../test/helpers/tokenizer.ts'
import { REPO_ROOT } from './corpus.ts'

const out = process.argv[2]
if (!out) {
  console.error('usage: npx tsx scripts/tokenizer-golden-inputs.ts OUT_DIR')
  process.exit(2)
}
rmSync(out, { recursive: true, force: true })
const fixture = join(REPO_ROOT, 'test/fixtures/tiny-gpt2')
mkdirSync(join(out, 'tiny-gpt2'), { recursive: true })
for (const f of ['tokenizer.json', 'vocab.json', 'merges.txt', 'config.json']) cpSync(join(fixture, f), join(out, 'tiny-gpt2', f))
for (const [name, json] of Object.entries(edgeTokenizerJsons())) {
  mkdirSync(join(out, name))
  writeFileSync(join(out, name, 'tokenizer.json'), JSON.stringify(json))
}
// The fixture gets every text; the hand-made edge tokenizers the first ones (see the .py).
const texts = [...TRICKY.filter((t) => t.length <= 2000), ...EDGE_TEXTS, ...randomTexts(600)]
writeFileSync(join(out, 'texts.json'), JSON.stringify({ texts, edgeCount: texts.length - 400 }))
console.log(`${out}: ${Object.keys(edgeTokenizerJsons()).length + 1} tokenizers, ${texts.length} texts`)
