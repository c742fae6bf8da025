// Reading a text corpus for the scripts (BPE training, the fixture model, the tokenizer benchmark):
// a .jsonl file (one {"text": ...} record per document, like resources/corpus/kjv-chapters.jsonl),
// a .txt/.md file (one document), or a folder of .txt/.md files (one document each).

import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
export const DEFAULT_CORPUS = join(REPO_ROOT, 'resources/corpus/kjv-chapters.jsonl')

export function readDocuments(path: string, field = 'text'): string[] {
  if (statSync(path).isDirectory()) {
    return readdirSync(path)
      .filter((n) => /\.(txt|md)$/i.test(n))
      .sort()
      .map((n) => readFileSync(join(path, n), 'utf8'))
  }
  const text = readFileSync(path, 'utf8')
  if (!/\.jsonl$/i.test(path)) return [text]
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      const record = JSON.parse(line) as Record<string, unknown>
      const value = record[field]
      if (typeof value !== 'string') throw new Error(`${path}:${i + 1}: no string field "${field}"`)
      return value
    })
}
