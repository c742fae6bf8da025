// Builds resources/corpus/kjv-chapters.jsonl from the King James Bible text of Debian's
// bible-kjv-text package (see resources/corpus/README.md for the licence and the exact steps).
//
//   apt-get install bible-kjv            # the `bible` reader and its bible-kjv-text data
//   bible -l100000 'Gen1:1-Rev22:21' > /tmp/kjv-dump.txt
//   npx tsx scripts/make-corpus.ts /tmp/kjv-dump.txt
//
// The dump is "Book N" title lines followed by "  V verse text" lines. One chapter becomes one
// document: chapters are the text's own units, long enough for 1k-2k-token training windows, and
// 1189 of them make a held-out split by document meaningful.

import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

interface Chapter {
  id: string
  book: string
  chapter: number
  title: string
  text: string
}

function parseDump(dump: string): Chapter[] {
  const chapters: Chapter[] = []
  let current: { book: string; chapter: number; verses: string[] } | null = null
  const finish = (): void => {
    if (!current) return
    const title = `${current.book} ${current.chapter}`
    const slug = current.book.toLowerCase().replace(/\s+/g, '-')
    chapters.push({
      id: `kjv/${slug}/${String(current.chapter).padStart(3, '0')}`,
      book: current.book,
      chapter: current.chapter,
      title,
      text: `${title}\n\n${current.verses.join('\n')}\n`,
    })
  }
  dump.split('\n').forEach((line, i) => {
    if (line.trim() === '') return
    const heading = /^(\S.*) (\d+)$/.exec(line)
    if (heading) {
      finish()
      current = { book: heading[1]!, chapter: Number(heading[2]), verses: [] }
      return
    }
    const verse = /^\s+(\d+) (.+)$/.exec(line)
    if (!verse || !current) throw new Error(`line ${i + 1}: neither a "Book N" heading nor a verse: ${JSON.stringify(line)}`)
    const expected = current.verses.length + 1
    if (Number(verse[1]) !== expected) throw new Error(`line ${i + 1}: verse ${verse[1]} where ${expected} was expected`)
    current.verses.push(`${verse[1]} ${verse[2]!.trim()}`)
  })
  finish()
  return chapters
}

const input = process.argv[2]
if (!input) {
  console.error('usage: npx tsx scripts/make-corpus.ts KJV_DUMP.txt   (see the comment at the top)')
  process.exit(2)
}
const chapters = parseDump(readFileSync(input, 'utf8'))
if (chapters.length !== 1189) throw new Error(`expected the 1189 chapters of the KJV, got ${chapters.length}`)
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'resources/corpus/kjv-chapters.jsonl')
writeFileSync(out, chapters.map((c) => JSON.stringify(c)).join('\n') + '\n')
const bytes = chapters.reduce((n, c) => n + Buffer.byteLength(c.text), 0)
console.log(`${out}: ${chapters.length} chapters, ${new Set(chapters.map((c) => c.book)).size} books, ${(bytes / 1e6).toFixed(2)} MB of text`)
