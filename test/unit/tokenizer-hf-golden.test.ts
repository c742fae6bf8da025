// Ids that Hugging Face's tokenizers produced (on a machine with transformers) for the fixture
// tokenizer and for tokenizer.json files that exercise HF's less common rules; this tokenizer must
// give the same ids and the same decoded text. How the file was made: test/fixtures/README.md.
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadTokenizer, type Tokenizer } from '../../src-main/core/tokenizer/index.ts'
import { tempDir } from '../helpers/temp.ts'
import { edgeTokenizerJsons } from '../helpers/tokenizer.ts'

interface GoldenCase {
  text: string
  ids: number[]
  /** present only where HF's decode is not the input text */
  decoded?: string
}

const FIXTURES = join(import.meta.dirname, '../fixtures')
let tmp: Awaited<ReturnType<typeof tempDir>>
let golden: { producer: string; tokenizers: Record<string, GoldenCase[]> }
const tokenizers = new Map<string, Tokenizer>()

beforeAll(async () => {
  tmp = await tempDir('longctx-golden-')
  golden = JSON.parse(await readFile(join(FIXTURES, 'tokenizer-golden.json'), 'utf8')) as typeof golden
  tokenizers.set('tiny-gpt2', await loadTokenizer(join(FIXTURES, 'tiny-gpt2')))
  for (const [name, json] of Object.entries(edgeTokenizerJsons())) {
    const dir = join(tmp.path, name)
    await mkdir(dir)
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(json))
    tokenizers.set(name, await loadTokenizer(dir))
  }
})
afterAll(() => tmp.cleanup())

describe('identity with HF tokenizers', () => {
  it.each(['tiny-gpt2', 'edge-added', 'edge-prefix', 'edge-order', 'edge-space'])('%s', (name) => {
    const cases = golden.tokenizers[name]!
    expect(cases.length).toBeGreaterThan(200)
    const tok = tokenizers.get(name)!
    const wrong: string[] = []
    for (const c of cases) {
      const ids = Array.from(tok.encode(c.text))
      if (JSON.stringify(ids) !== JSON.stringify(c.ids)) wrong.push(`encode ${JSON.stringify(c.text)}: ${JSON.stringify(ids)} != HF ${JSON.stringify(c.ids)}`)
      const decoded = tok.decode(c.ids)
      if (decoded !== (c.decoded ?? c.text)) wrong.push(`decode ${JSON.stringify(c.ids)}: ${JSON.stringify(decoded)} != HF ${JSON.stringify(c.decoded ?? c.text)}`)
    }
    expect(wrong.slice(0, 10)).toEqual([])
  })
})
