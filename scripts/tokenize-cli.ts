// Encodes or decodes with the app's tokenizer, for comparing with other implementations
// (scripts/compare-tokenizer-hf.py drives it).
//
//   npx tsx scripts/tokenize-cli.ts MODEL_DIR < text            -> ids as a JSON array
//   npx tsx scripts/tokenize-cli.ts MODEL_DIR --jsonl < lines   -> each line is a JSON string;
//                                                                 prints {"ids": [...], "text": decoded}
//   npx tsx scripts/tokenize-cli.ts MODEL_DIR --decode < ids    -> text of a JSON array of ids

import { loadTokenizer } from '../src-main/core/tokenizer/index.ts'

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

const [dir, mode] = process.argv.slice(2)
if (!dir) {
  console.error('usage: npx tsx scripts/tokenize-cli.ts MODEL_DIR [--jsonl | --decode] < input')
  process.exit(2)
}
try {
  const tok = await loadTokenizer(dir)
  const input = await readStdin()
  if (mode === '--decode') {
    process.stdout.write(tok.decode(JSON.parse(input) as number[]))
  } else if (mode === '--jsonl') {
    for (const line of input.split('\n')) {
      if (line.trim() === '') continue
      const ids = Array.from(tok.encode(JSON.parse(line) as string))
      process.stdout.write(JSON.stringify({ ids, text: tok.decode(ids) }) + '\n')
    }
  } else {
    process.stdout.write(JSON.stringify(Array.from(tok.encode(input))) + '\n')
  }
} catch (e) {
  console.error((e as Error).message)
  process.exit(1)
}
