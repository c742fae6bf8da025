// Dataset readers on real files written into a temp folder: every format, the document rules,
// and each kind of bad input with the message the user sees.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parquetWriteBuffer } from 'hyparquet-writer'
import { JsonArrayStream } from '../../src-main/core/datasets/json-stream.ts'
import { previewDataset } from '../../src-main/core/datasets/preview.ts'
import {
  DEFAULT_READ_OPTIONS,
  findSafeCut,
  ImportLog,
  readDocuments,
  type DocPiece,
  type ReadOptions,
} from '../../src-main/core/datasets/readers.ts'
import { resolveSource } from '../../src-main/core/datasets/sources.ts'
import { completeEnd, firstInvalidUtf8, Utf8ChunkDecoder } from '../../src-main/core/datasets/text-decoding.ts'
import { loadTokenizer } from '../../src-main/core/tokenizer/index.ts'
import { tempDir } from '../helpers/temp.ts'

let dir: Awaited<ReturnType<typeof tempDir>>
const FIXTURE_MODEL = join(import.meta.dirname, '../fixtures/tiny-gpt2')

beforeAll(async () => {
  dir = await tempDir('longctx-datasets-')
})
afterAll(async () => {
  await dir.cleanup()
})

async function file(name: string, content: string | Uint8Array): Promise<string> {
  const p = join(dir.path, name)
  await mkdir(join(p, '..'), { recursive: true })
  await writeFile(p, content)
  return p
}

interface Read {
  docs: string[]
  pieces: DocPiece[]
  log: ImportLog
}

async function read(path: string, opts: Partial<ReadOptions> = {}): Promise<Read> {
  const plan = await resolveSource(path)
  const options = { ...DEFAULT_READ_OPTIONS, ...opts }
  const log = new ImportLog(options.onBadLine)
  const docs: string[] = []
  const pieces: DocPiece[] = []
  let cur = ''
  for await (const p of readDocuments(plan, { options, log })) {
    pieces.push(p)
    if (p.discard) {
      cur = ''
      continue
    }
    cur += p.text
    if (p.last) {
      docs.push(cur)
      cur = ''
    }
  }
  return { docs, pieces, log }
}

async function readError(path: string, opts: Partial<ReadOptions> = {}): Promise<string> {
  try {
    await read(path, opts)
  } catch (err) {
    return (err as Error).message
  }
  throw new Error(`reading ${path} did not fail`)
}

describe('UTF-8 decoding', () => {
  it('decodes characters split across chunks and strips a BOM', () => {
    const bytes = Buffer.from('\uFEFFПривет, мир 👋!', 'utf8')
    const d = new Utf8ChunkDecoder('x.txt')
    let out = ''
    for (let i = 0; i < bytes.length; i++) out += d.push(bytes.subarray(i, i + 1))
    out += d.end()
    expect(out).toBe('Привет, мир 👋!')
  })

  it('finds the byte offset of invalid UTF-8', () => {
    expect(firstInvalidUtf8(Buffer.from([0x61, 0x62, 0xff, 0x63]))).toBe(2)
    expect(firstInvalidUtf8(Buffer.from([0xc0, 0x80]))).toBe(0) // overlong
    expect(firstInvalidUtf8(Buffer.from([0xed, 0xa0, 0x80]))).toBe(0) // surrogate
    expect(firstInvalidUtf8(Buffer.from('ok ✓', 'utf8'))).toBe(6)
    expect(completeEnd(Buffer.from([0x61, 0xe2, 0x9c]))).toBe(1)
  })
})

describe('cutting long documents into pieces', () => {
  it('cuts only where the GPT-2 pre-tokenizer splits, so pieces tokenize like the whole', async () => {
    const tok = await loadTokenizer(FIXTURE_MODEL)
    const base =
      'In the beginning   God created\tthe heaven; and the earth. Привет, мир! 👋🏽 emoji  ' +
      "don't  it's 12345 67 ... ?!   \n\n  x  y z Averyveryverylongwordwithoutanyspacesatall "
    const text = base.repeat(60)
    const whole = Array.from(tok.encode(text))
    const r = await read(await file('cut/long.txt', text), { maxPieceChars: 300 })
    expect(r.pieces.length).toBeGreaterThan(10)
    expect(r.log.forcedCuts).toBe(0)
    expect(r.docs).toEqual([text])
    const pieced = r.pieces.flatMap((p) => Array.from(tok.encode(p.text)))
    expect(pieced).toEqual(whole)
  })

  it('findSafeCut never cuts beside whitespace', () => {
    expect(findSafeCut('aaa  bbb', 0, 7)).toBe(-1)
    expect(findSafeCut('aaa bbb', 0, 6)).toBe(3)
    expect(findSafeCut('a b\u00a0c', 0, 5)).toBe(1)
  })

  it('streams a 100 MB single line without holding it whole', async () => {
    const line = Buffer.alloc(100 * 1024 * 1024, 'abcdefghij klmnopqrs tuvwxyz. ')
    const p = await file('huge/one-line.txt', line)
    const plan = await resolveSource(p)
    const log = new ImportLog('stop')
    // Live memory (after a forced GC) is what tells streaming from holding the line.
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc') as () => void
    gc()
    const heapBefore = process.memoryUsage().heapUsed
    let pieces = 0
    let chars = 0
    let maxPiece = 0
    let peakLive = 0
    const t0 = performance.now()
    for await (const piece of readDocuments(plan, { options: DEFAULT_READ_OPTIONS, log })) {
      pieces++
      chars += piece.text.length
      maxPiece = Math.max(maxPiece, piece.text.length)
      if (pieces % 10 === 0) {
        gc()
        peakLive = Math.max(peakLive, process.memoryUsage().heapUsed - heapBefore)
      }
    }
    expect(chars).toBe(line.length)
    expect(pieces).toBeGreaterThan(90)
    expect(maxPiece).toBeLessThanOrEqual(DEFAULT_READ_OPTIONS.maxPieceChars)
    // Holding the line would keep >= 100 MB alive; streaming keeps a few pieces.
    expect(peakLive).toBeLessThan(20 * 1024 * 1024)
    expect(performance.now() - t0).toBeLessThan(20_000)
  })
})

describe('plain text', () => {
  it('a single .txt is one document; with a separator, one per section', async () => {
    const p = await file('book.txt', 'Chapter one.\nText.\n---\nChapter two.\n  ---  \nChapter three.\n')
    expect((await read(p)).docs).toEqual(['Chapter one.\nText.\n---\nChapter two.\n  ---  \nChapter three.\n'])
    expect((await read(p, { separator: '---' })).docs).toEqual(['Chapter one.\nText.\n', 'Chapter two.\n', 'Chapter three.\n'])
    const blank = await file('para.txt', 'One.\nstill one.\n\n\n\nTwo.\r\n\r\nThree.')
    expect((await read(blank, { separator: '' })).docs).toEqual(['One.\nstill one.\n', 'Two.\r\n', 'Three.'])
  })

  it('a folder: one document per .txt/.md file, recursive, sorted, hidden and other files skipped', async () => {
    await file('folder/b.txt', 'bee')
    await file('folder/a.md', '# A')
    await file('folder/sub/c.txt', 'sea')
    await file('folder/sub/Z.txt', 'zed')
    await file('folder/.hidden.txt', 'hidden')
    await file('folder/image.png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0]))
    await file('folder/empty.txt', '')
    await file('folder/blank.txt', ' \n\t\n')
    const r = await read(join(dir.path, 'folder'))
    expect(r.docs).toEqual(['# A', 'bee', 'zed', 'sea']) // code-unit order: 'sub/Z' < 'sub/c'
    expect(r.log.emptyFiles).toBe(2)
    const plan = await resolveSource(join(dir.path, 'folder'))
    expect(plan.ignoredFiles).toBe(1)
  })

  it('refuses a folder without text files, saying what it looked at', async () => {
    await file('notext/data.bin', 'x')
    await mkdir(join(dir.path, 'notext/empty-sub'), { recursive: true })
    const msg = await readError(join(dir.path, 'notext'))
    expect(msg).toMatch(/contains no \.txt or \.md files \(looked in 2 folders, 1 other file\)/)
  })

  it('refuses an empty file and a whitespace-only file', async () => {
    expect(await readError(await file('empty.txt', ''))).toMatch(/empty\.txt is empty \(0 bytes\)/)
    expect(await readError(await file('ws.txt', '  \n \n'))).toMatch(/holds only whitespace/)
  })

  it('refuses binary files with the offset of the NUL byte', async () => {
    const p = await file('bin.txt', Buffer.concat([Buffer.from('hello'), Buffer.from([0, 1, 2])]))
    expect(await readError(p)).toMatch(/bin\.txt looks like a binary file.*NUL byte at byte offset 5/)
    const utf16 = await file('utf16.txt', Buffer.from('\uFEFFhi', 'utf16le'))
    expect(await readError(utf16)).toMatch(/UTF-16.*Save it as UTF-8/)
  })

  it('refuses invalid UTF-8 with file, byte offset and line, and suggests a conversion', async () => {
    const cp1251 = Buffer.from([0x4f, 0x4b, 0x0a, 0x6f, 0x6b, 0x0a, 0xcf, 0xf0, 0xe8]) // "При" in Windows-1251
    const p = await file('cp1251.txt', cp1251)
    const msg = await readError(p)
    expect(msg).toContain(`${p} is not valid UTF-8 at byte offset 6 (line 3)`)
    expect(msg).toContain('iconv -f cp1251')
  })

  it('in a folder, a bad file stops the import, or is skipped with a count', async () => {
    await file('mixed/a.txt', 'good one')
    await file('mixed/b.txt', Buffer.from([0x61, 0xff, 0x62]))
    await file('mixed/c.txt', 'good two')
    expect(await readError(join(dir.path, 'mixed'))).toMatch(/b\.txt is not valid UTF-8 at byte offset 1/)
    const r = await read(join(dir.path, 'mixed'), { onBadLine: 'skip' })
    expect(r.docs).toEqual(['good one', 'good two'])
    expect(r.log.skippedFiles).toBe(1)
  })

  it('drops the part of a document already handed out when its file turns out bad', async () => {
    // The bad byte sits after the first 1 MiB read, so pieces of the file were already handed out.
    const good = 'word '.repeat(300_000)
    await file('late/a.txt', Buffer.concat([Buffer.from(good), Buffer.from([0xff])]))
    await file('late/b.txt', 'fine')
    const r = await read(join(dir.path, 'late'), { onBadLine: 'skip', maxPieceChars: 100_000 })
    expect(r.pieces.some((p) => p.discard)).toBe(true)
    expect(r.docs).toEqual(['fine'])
  })
})

describe('JSON lines', () => {
  it('takes the "text" field by default, or joins chosen fields (Gazeta-style records)', async () => {
    const rec = (i: number) => ({ text: `Текст ${i}`, summary: `Кратко ${i}`, title: `Заголовок ${i}`, date: '2019-01-01', url: `u${i}` })
    const p = await file('gazeta.jsonl', [0, 1, 2].map((i) => JSON.stringify(rec(i))).join('\n') + '\n\n')
    expect((await read(p)).docs).toEqual(['Текст 0', 'Текст 1', 'Текст 2'])
    expect((await read(p, { fields: ['title', 'text'] })).docs[1]).toBe('Заголовок 1\n\nТекст 1')
  })

  it('reports a malformed line with file and line; skips and counts when asked', async () => {
    const p = await file('bad.jsonl', '{"text":"a"}\n{"text": "b",\n{"text":"c"}\n')
    const msg = await readError(p)
    expect(msg).toContain(`${p}, line 2: not valid JSON`)
    expect(msg).toContain('--skip-bad')
    const r = await read(p, { onBadLine: 'skip' })
    expect(r.docs).toEqual(['a', 'c'])
    expect(r.log.skippedRecords).toBe(1)
    expect(r.log.summary()).toContain('1 bad record skipped')
  })

  it('lists the fields that exist when the text field is missing', async () => {
    const p = await file('nofield.jsonl', '{"title":"t","body_text":"b"}\n')
    expect(await readError(p)).toMatch(/no text field found.*The records have the fields: "title", "body_text".*--field NAME/)
    const q = await file('laterfield.jsonl', '{"text":"a"}\n{"title":"t"}\n')
    expect(await readError(q)).toMatch(/line 2: the record has no field "text" \(it has: "title"\)/)
    expect(await readError(p, { fields: ['content'] })).toMatch(/no field "content" \(it has: "title", "body_text"\)/)
  })

  it('treats a line over the record limit as a bad record without holding it', async () => {
    const big = JSON.stringify({ text: 'x'.repeat(3000) })
    const p = await file('bigline.jsonl', `{"text":"a"}\n${big}\n{"text":"b"}\n`)
    expect(await readError(p, { maxRecordBytes: 1000 })).toMatch(/line 2: the line is .* over the .* limit/)
    expect((await read(p, { maxRecordBytes: 1000, onBadLine: 'skip' })).docs).toEqual(['a', 'b'])
  })

  it('a 100 MB line is over the default record limit: reported, never held, the rest still read', async () => {
    const huge = Buffer.alloc(100 * 1024 * 1024 + 12, 'x')
    huge.write('{"text": "', 0)
    huge.write('"}', huge.length - 2)
    const p = await file('huge/line.jsonl', Buffer.concat([Buffer.from('{"text":"before"}\n'), huge, Buffer.from('\n{"text":"after"}\n')]))
    expect(await readError(p)).toMatch(/huge\/line\.jsonl, line 2: the line is 100 MiB long, over the 64 MiB limit for one record/)
    const r = await read(p, { onBadLine: 'skip' })
    expect(r.docs).toEqual(['before', 'after'])
    expect(r.log.skippedRecords).toBe(1)
  })

  it('reports invalid UTF-8 inside a line with its byte offset', async () => {
    const p = await file('badutf.jsonl', Buffer.concat([Buffer.from('{"text":"a"}\n{"text":"'), Buffer.from([0xc3]), Buffer.from('"}\n')]))
    expect(await readError(p)).toContain(`${p}, line 2: not valid UTF-8 at byte offset 22`)
  })
})

describe('JSON', () => {
  it('reads an array of records, {data: [...]}, and an array of strings, streaming', async () => {
    const arr = await file('arr.json', JSON.stringify([{ text: 'a "q" [x]' }, { text: 'b\\n}' }, { text: 'c' }], null, 2))
    expect((await read(arr)).docs).toEqual(['a "q" [x]', 'b\\n}', 'c'])
    const wrapped = await file('wrapped.json', JSON.stringify({ version: 2, meta: { a: [1, { b: '}' }] }, data: [{ text: 'x' }, { text: 'y' }], n: 5 }))
    expect((await read(wrapped)).docs).toEqual(['x', 'y'])
    const strings = await file('strings.json', '["one", "two", "three"]')
    expect((await read(strings)).docs).toEqual(['one', 'two', 'three'])
  })

  it('splits elements correctly whatever the chunk boundaries', () => {
    const records = [{ text: 'a,b]' }, 12, 'str"ing', { nested: { deep: [1, 2, { x: '{' }] }, text: 't' }, null, true]
    const json = Buffer.from(`  {"skip": [1, {"a": "]"}], "data": ${JSON.stringify(records, null, 1)}}  `)
    for (const size of [1, 2, 3, 7, 64, json.length]) {
      const s = new JsonArrayStream(1 << 20)
      const out: unknown[] = []
      for (let i = 0; i < json.length; i += size) {
        for (const item of s.push(json.subarray(i, i + size))) {
          if (item.kind === 'element') out.push(JSON.parse(item.bytes.toString()))
        }
      }
      s.end()
      expect(out).toEqual(records)
    }
  })

  it('says which keys exist when the object has no "data" array, and reports broken JSON with its line', async () => {
    const p = await file('nodata.json', '{"rows": [{"text": "a"}], "count": 1}')
    expect(await readError(p)).toMatch(/no "data" array of records \(its keys: "rows", "count"\)/)
    const broken = await file('broken.json', '[\n{"text": "a"},\n{"text": "b"}\n')
    expect(await readError(broken)).toMatch(/broken\.json, line 4 .*truncated/)
  })
})

describe('CSV and TSV', () => {
  it('reads RFC 4180 quoting (commas, quotes, line breaks in fields)', async () => {
    const p = await file('t.csv', 'id,text\n1,"Hello, ""world""\nsecond line"\n2,plain\n')
    expect((await read(p)).docs).toEqual(['Hello, "world"\nsecond line', 'plain'])
    const t = await file('t.tsv', 'title\ttext\nA\tbody a\nB\tbody b\n')
    expect((await read(t, { fields: ['title', 'text'] })).docs).toEqual(['A\n\nbody a', 'B\n\nbody b'])
  })

  it('stops on a malformed row, or skips it when asked', async () => {
    const p = await file('bad.csv', 'id,text\n1,ok\n2,"unterminated,x\n')
    expect(await readError(p)).toMatch(/bad\.csv: not valid CSV/)
    const q = await file('cols.csv', 'id,text\n1,ok\n2,too,many\n3,fine\n')
    expect(await readError(q)).toMatch(/cols\.csv: not valid CSV .*line 3/)
    const r = await read(q, { onBadLine: 'skip' })
    expect(r.docs).toEqual(['ok', 'fine'])
    expect(r.log.skippedRecords).toBe(1)
  })
})

describe('Parquet', () => {
  it('reads the text column of a file written by hyparquet-writer, row group by row group', async () => {
    const n = 250
    const buf = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: Array.from({ length: n }, (_, i) => i), type: 'INT32' },
        { name: 'text', data: Array.from({ length: n }, (_, i) => `документ ${i}`), type: 'STRING' },
      ],
      rowGroupSize: 100,
    })
    const p = await file('d.parquet', new Uint8Array(buf))
    const r = await read(p)
    expect(r.docs.length).toBe(n)
    expect(r.docs[0]).toBe('документ 0')
    expect(r.docs[249]).toBe('документ 249')
    expect(await readError(p, { fields: ['body'] })).toMatch(/no column "body" \(it has: "id", "text"\)/)
  })

  it('refuses a file that is not Parquet', async () => {
    expect(await readError(await file('fake.parquet', 'not parquet at all'))).toMatch(/not a readable Parquet file/)
  })
})

describe('preview', () => {
  it('shows the format, the fields, the text field and the start of the first documents', async () => {
    const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ title: `T${i}`, text: `body ${i} `.repeat(i + 1), url: 'u' }))
    const p = await file('prev.jsonl', lines.join('\n') + '\n{broken\n')
    const pv = await previewDataset({ path: p, limit: 3, maxChars: 12 })
    expect(pv.format).toBe('jsonl')
    expect(pv.textFields).toEqual(['text'])
    expect(pv.fields.map((f) => f.name)).toEqual(['title', 'text', 'url'])
    expect(pv.documents.map((d) => d.text)).toEqual(['body 0 ', 'body 1 body ', 'body 2 body '])
    expect(pv.documents[2]).toMatchObject({ truncated: true, chars: 21, where: `${p}, line 3` })
  })

  it('previews a huge document without reading it to the end', async () => {
    const p = join(dir.path, 'huge/one-line.txt') // written by the 100 MB test above
    const t0 = performance.now()
    const pv = await previewDataset({ path: p, limit: 1, maxChars: 100 })
    expect(pv.documents[0]!.text.length).toBe(100)
    expect(pv.documents[0]!.chars).toBeNull()
    expect(performance.now() - t0).toBeLessThan(2000)
  })
})
