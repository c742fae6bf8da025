// What a dataset is made of: the path the user picked, resolved to a format and a sorted list of
// files, and the content hash of those files. The hash is one ingredient of the dataset id, so it
// must depend on the bytes (not on names or times) and on the order the documents come in.
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, readdir, readFile, stat } from 'node:fs/promises'
import { basename, dirname, extname, join, relative, sep } from 'node:path'
import { writeFileAtomic } from '../atomic-file.ts'
import { DatasetInputError } from './text-decoding.ts'

export type SourceFormat = 'txt' | 'folder' | 'jsonl' | 'json' | 'csv' | 'tsv' | 'parquet'

export interface SourceFile {
  path: string
  /** Path relative to the source root (the file name itself for a single file), '/'-separated. */
  rel: string
  sizeBytes: number
  mtimeMs: number
  ino: number
}

export interface SourcePlan {
  path: string
  format: SourceFormat
  files: SourceFile[]
  totalBytes: number
  /** Files in the folder that were not imported (wrong extension), for the preview. */
  ignoredFiles: number
}

const TEXT_EXTENSIONS = new Set(['.txt', '.md', '.markdown', '.text'])
const FORMAT_BY_EXTENSION: Record<string, SourceFormat> = {
  '.txt': 'txt',
  '.text': 'txt',
  '.md': 'txt',
  '.markdown': 'txt',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.json': 'json',
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.parquet': 'parquet',
}

export const SUPPORTED_DESCRIPTION =
  'a .txt or .md file, a folder of .txt/.md files, .jsonl, .json, .csv, .tsv or .parquet'

export async function resolveSource(path: string): Promise<SourcePlan> {
  let info
  try {
    info = await stat(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new DatasetInputError(`${path} does not exist. Pick ${SUPPORTED_DESCRIPTION}.`)
    throw new DatasetInputError(`${path} cannot be read (${code ?? String(err)}).`)
  }
  if (info.isDirectory()) return resolveFolder(path)
  const format = FORMAT_BY_EXTENSION[extname(path).toLowerCase()]
  if (!format) {
    throw new DatasetInputError(
      `${path}: the extension "${extname(path) || '(none)'}" is not a dataset format this app reads. ` +
        `Pick ${SUPPORTED_DESCRIPTION}.`,
    )
  }
  const file = { path, rel: basename(path), sizeBytes: info.size, mtimeMs: info.mtimeMs, ino: info.ino }
  return { path, format, files: [file], totalBytes: info.size, ignoredFiles: 0 }
}

async function resolveFolder(root: string): Promise<SourcePlan> {
  const files: SourceFile[] = []
  let ignored = 0
  let folders = 0
  // Iterative walk; directory symlinks are not followed so a link loop cannot hang the import.
  const pending = [root]
  while (pending.length) {
    const dir = pending.pop()!
    folders++
    let entries
    try {
      entries = await readdir(dir, { withFileTypes: true })
    } catch (err) {
      throw new DatasetInputError(`The folder ${dir} cannot be read (${(err as NodeJS.ErrnoException).code}).`)
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue // hidden files and folders (.git, .DS_Store) are not data
      const full = join(dir, e.name)
      if (e.isDirectory()) {
        pending.push(full)
        continue
      }
      let st
      try {
        st = await stat(full) // follows file symlinks
      } catch {
        ignored++
        continue
      }
      if (!st.isFile() || !TEXT_EXTENSIONS.has(extname(e.name).toLowerCase())) {
        ignored++
        continue
      }
      const rel = relative(root, full).split(sep).join('/')
      files.push({ path: full, rel, sizeBytes: st.size, mtimeMs: st.mtimeMs, ino: st.ino })
    }
  }
  if (files.length === 0) {
    throw new DatasetInputError(
      `The folder ${root} contains no .txt or .md files (looked in ${folders} folder${folders === 1 ? '' : 's'}, ` +
        `${ignored} other file${ignored === 1 ? '' : 's'}). Put the texts in .txt or .md files, one document per file, ` +
        'or import a .jsonl/.json/.csv/.parquet file directly.',
    )
  }
  // Code-unit order, not locale order: the same folder gives the same documents on every machine.
  files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0))
  return {
    path: root,
    format: 'folder',
    files,
    totalBytes: files.reduce((s, f) => s + f.sizeBytes, 0),
    ignoredFiles: ignored,
  }
}

// ---- content hash --------------------------------------------------------------------------

interface CachedHash {
  size: number
  mtimeMs: number
  ino: number
  sha256: string
}

/**
 * A small cache of file hashes keyed by path, trusted while size, mtime and inode are unchanged,
 * so re-importing a multi-GB source is instant instead of re-reading it.
 */
export class FileHashCache {
  private entries: Record<string, CachedHash> = {}
  private dirty = false
  private constructor(private readonly file: string) {}

  static async open(file: string): Promise<FileHashCache> {
    const cache = new FileHashCache(file)
    try {
      const parsed = JSON.parse(await readFile(file, 'utf8'))
      if (parsed && typeof parsed === 'object' && parsed.version === 1) cache.entries = parsed.files ?? {}
    } catch {
      // missing or damaged: start empty, it is only a cache
    }
    return cache
  }

  lookup(f: SourceFile): string | null {
    const e = this.entries[f.path]
    return e && e.size === f.sizeBytes && e.mtimeMs === f.mtimeMs && e.ino === f.ino ? e.sha256 : null
  }

  store(f: SourceFile, sha256: string): void {
    this.entries[f.path] = { size: f.sizeBytes, mtimeMs: f.mtimeMs, ino: f.ino, sha256 }
    this.dirty = true
  }

  async save(): Promise<void> {
    if (!this.dirty) return
    // Keep the cache small: at most the 20,000 most recent entries.
    const keys = Object.keys(this.entries)
    if (keys.length > 20_000) for (const k of keys.slice(0, keys.length - 20_000)) delete this.entries[k]
    await mkdir(dirname(this.file), { recursive: true })
    await writeFileAtomic(this.file, JSON.stringify({ version: 1, files: this.entries }))
    this.dirty = false
  }
}

export async function sha256File(path: string, signal?: AbortSignal, onBytes?: (n: number) => void): Promise<string> {
  const hash = createHash('sha256')
  const stream = createReadStream(path, { highWaterMark: 1 << 20, signal })
  for await (const chunk of stream) {
    hash.update(chunk as Buffer)
    onBytes?.((chunk as Buffer).length)
  }
  return hash.digest('hex')
}

/**
 * Hash of the source: the format and, per file in import order, its relative path and content
 * hash. A single file's own name is left out, so a renamed copy is the same dataset.
 */
export async function hashSource(
  plan: SourcePlan,
  cache: FileHashCache | null,
  signal?: AbortSignal,
  onBytes?: (n: number) => void,
): Promise<string> {
  const outer = createHash('sha256')
  outer.update(`longctx-source-v1\n${plan.format}\n`)
  for (const f of plan.files) {
    let h = cache?.lookup(f) ?? null
    if (h) onBytes?.(f.sizeBytes)
    else {
      h = await sha256File(f.path, signal, onBytes)
      cache?.store(f, h)
    }
    outer.update(`${plan.format === 'folder' ? f.rel : ''}\n${f.sizeBytes}\n${h}\n`)
  }
  return outer.digest('hex')
}
