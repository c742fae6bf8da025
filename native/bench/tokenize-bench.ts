// Tokenizer throughput on one core (the dataset import runs one tokenizer per worker, so MB/s per
// core times workers is the import rate). Text MB are UTF-8 bytes, 1 MB = 10^6 bytes.
//
//   npx tsx native/bench/tokenize-bench.ts [MODEL_DIR] [--corpus FILE_OR_DIR] [--rounds 5]
//
// MODEL_DIR defaults to the fixture model (512-token vocabulary); pass a real GPT-2 folder to
// measure with a 50k vocabulary. "cold" is a fresh tokenizer (empty word cache) on each round,
// "warm" reuses one, as an import of many files does after its first file.

import { parseArgs } from 'node:util'
import { join } from 'node:path'
import { loadTokenizer } from '../../src-main/core/tokenizer/index.ts'
import { DEFAULT_CORPUS, REPO_ROOT, readDocuments } from '../../scripts/corpus.ts'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { corpus: { type: 'string', default: DEFAULT_CORPUS }, rounds: { type: 'string', default: '5' } },
})
const modelDir = positionals[0] ?? join(REPO_ROOT, 'test/fixtures/tiny-gpt2')
const docs = readDocuments(values.corpus)
const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d), 0)
const rounds = Number(values.rounds)

// Throughput is reported against CPU time of this process (all its threads, so GC helpers count
// against it) as well as wall time: on a shared machine the wall clock also measures the others.
async function run(label: string, fresh: boolean): Promise<void> {
  const cpuSpeeds: number[] = []
  const wallSpeeds: number[] = []
  let tokens = 0
  let tok = await loadTokenizer(modelDir)
  for (let r = 0; r < rounds; r++) {
    if (fresh) tok = await loadTokenizer(modelDir)
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    tokens = 0
    for (const d of docs) tokens += tok.encode(d).length
    const wallS = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    cpuSpeeds.push(bytes / 1e6 / ((cpu.user + cpu.system) / 1e6))
    wallSpeeds.push(bytes / 1e6 / wallS)
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  console.log(
    `${label.padEnd(5)} ${median(cpuSpeeds).toFixed(1)} MB/s per core (CPU time; wall clock ${median(wallSpeeds).toFixed(1)} MB/s; ` +
      `median of ${rounds}), ${tokens} tokens, ${(bytes / tokens).toFixed(2)} bytes/token`,
  )
}

console.log(`tokenizer ${modelDir}`)
console.log(`corpus    ${values.corpus}: ${docs.length} documents, ${(bytes / 1e6).toFixed(2)} MB`)
await run('cold', true)
await run('warm', false)
