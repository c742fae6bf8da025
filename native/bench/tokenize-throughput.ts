// Dataset import throughput, end to end (read, UTF-8 check, worker-thread tokenization, token
// shards on disk), with 1 worker and with one per core. MB are source bytes, 1 MB = 10^6 bytes;
// the rate is over the tokenizing phase (workers already started, tokenizer loaded).
//
//   npx tsx native/bench/tokenize-throughput.ts [MODEL_DIR] [--corpus FILE_OR_DIR] [--mb 32] [--workers 1,2] [--mixed]
//
// MODEL_DIR defaults to the fixture model (512 tokens); pass a GPT-2 folder for a 50k vocabulary.
// The corpus (default: the bundled King James Bible chapters) is repeated up to --mb. --mixed
// appends made-up words in Latin and Cyrillic letters to every document, so the tokenizer's word
// cache misses far more often than on natural single-domain text: a pessimistic figure.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { DEFAULT_CORPUS, REPO_ROOT, readDocuments } from '../../scripts/corpus.ts'
import { importDataset } from '../../src-main/core/datasets/import.ts'
import { Prng } from '../../src-main/core/datasets/prng.ts'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    corpus: { type: 'string', default: DEFAULT_CORPUS },
    mb: { type: 'string', default: '32' },
    workers: { type: 'string', default: `1,${availableParallelism()}` },
    mixed: { type: 'boolean', default: false },
  },
})
const modelDir = positionals[0] ?? join(REPO_ROOT, 'test/fixtures/tiny-gpt2')
const targetBytes = Number(values.mb) * 1e6
const base = readDocuments(values.corpus)

function madeUpWords(rng: Prng, n: number): string {
  const latin = 'abcdefghijklmnopqrstuvwxyz'
  const cyr = 'абвгдеёжзийклмнопрстуфхцчшщыьэюя'
  const words: string[] = []
  for (let i = 0; i < n; i++) {
    const alphabet = rng.nextInt(2) ? latin : cyr
    let w = ''
    for (let k = 2 + rng.nextInt(9); k > 0; k--) w += alphabet[rng.nextInt(alphabet.length)]
    words.push(w)
  }
  return words.join(' ')
}

const work = await mkdtemp(join(tmpdir(), 'longctx-bench-'))
try {
  const rng = Prng.fromSeed(1)
  const lines: string[] = []
  let bytes = 0
  for (let i = 0; bytes < targetBytes; i++) {
    let text = base[i % base.length]!
    if (values.mixed) text += '\n' + madeUpWords(rng, 200)
    const line = JSON.stringify({ text })
    lines.push(line)
    bytes += Buffer.byteLength(line) + 1
  }
  const source = join(work, 'corpus.jsonl')
  await writeFile(source, lines.join('\n') + '\n')
  console.log(
    `source: ${lines.length} documents, ${(bytes / 1e6).toFixed(1)} MB${values.mixed ? ' (with made-up words)' : ''}; ` +
      `model: ${modelDir}; cores: ${availableParallelism()}; load average: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
  )
  for (const w of values.workers.split(',').map(Number)) {
    const r = await importDataset({ path: source, modelDir }, { datasetsDir: join(work, `datasets-${w}`), workers: w })
    const mbps = r.manifest.import.mbPerSec
    console.log(
      `${String(w).padStart(3)} worker${w === 1 ? ' ' : 's'}: ${mbps.toFixed(2).padStart(7)} MB/s total, ${(mbps / w).toFixed(2).padStart(6)} MB/s per worker ` +
        `(${r.manifest.stats.total.tokens} tokens, ${(bytes / r.manifest.stats.total.tokens).toFixed(2)} bytes/token, ${r.manifest.import.seconds} s with startup, workers busy ${Math.round((r.manifest.import.workerBusy ?? 0) * 100)}%)`,
    )
  }
} finally {
  await rm(work, { recursive: true, force: true })
}
