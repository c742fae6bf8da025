// Importing a dataset: resolve the source, hash it, and either find it in the cache or stream it
// through the readers and the tokenize pool into a new dataset folder.
//
// Crash safety: everything is written into <datasets>/.importing-<pid>-<id>-<random>/; the
// manifest is written last (temp + fsync + rename) and only then the folder is renamed to
// <datasets>/<id>/. A failed or cancelled import removes its folder; one left by a killed process
// is never listed (no manifest, hidden name) and is removed by the next import.
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { ApiError } from '../../api/contract.ts'
import type { DatasetImportPhase } from '../../api/datasets.ts'
import { writeFileAtomic } from '../atomic-file.ts'
import { loadTokenizer } from '../tokenizer/index.ts'
import { DEFAULT_READ_OPTIONS, ImportLog, READER_VERSION, readDocuments, type BadLinePolicy, type ReadOptions } from './readers.ts'
import { FileHashCache, hashSource, resolveSource, type SourcePlan } from './sources.ts'
import { chooseHeldOut, computeStats, DEFAULT_SPLIT, type SplitOptions } from './stats.ts'
import {
  DATASET_SCHEMA_VERSION,
  DatasetWriter,
  MANIFEST_FILE,
  readManifest,
  writeHeldOut,
  type DatasetManifest,
  type WriteIO,
} from './store.ts'
import { TokenizePool, type BatchResult } from './tokenize-pool.ts'
import { DatasetInputError } from './text-decoding.ts'

export interface ImportRequest {
  path: string
  modelDir: string
  /** Text field of record formats, or several to join; default: auto-detect ('text', …). */
  field?: string | string[]
  /** Single .txt: a line equal to this separates documents ('' = blank lines). */
  separator?: string | null
  onBadLine?: BadLinePolicy
  heldOutFraction?: number
  seed?: number
}

export interface ImportProgress {
  phase: DatasetImportPhase
  bytesDone: number
  bytesTotal: number
  documents: number
  tokens: number
  mbPerSec: number
  etaSeconds: number | null
}

export interface ImportEnv {
  datasetsDir: string
  signal?: AbortSignal
  onProgress?: (p: ImportProgress) => void
  /** Test hooks: a failing writer (full disk), pool size, shard size, piece and record limits. */
  io?: WriteIO
  workers?: number
  shardBytes?: number
  read?: Partial<Pick<ReadOptions, 'maxPieceChars' | 'maxRecordBytes'>>
  split?: Partial<SplitOptions>
  progressIntervalMs?: number
}

export interface ImportResult {
  id: string
  dir: string
  cached: boolean
  manifest: DatasetManifest
}

/** Texts per message to a worker: big enough to amortize messaging, small enough to balance. */
const BATCH_CHARS = 256 * 1024
const BATCH_MAX_PIECES = 2048
const HASH_CACHE_FILE = '.source-hashes.json'
export const IMPORTING_PREFIX = '.importing-'

export async function importDataset(req: ImportRequest, env: ImportEnv): Promise<ImportResult> {
  const started = performance.now()
  const signal = env.signal
  const progress = new ProgressMeter(env.onProgress, env.progressIntervalMs ?? 200)
  progress.set({ phase: 'scanning' })
  const path = resolve(req.path)
  const plan = await resolveSource(path)
  progress.set({ bytesTotal: plan.totalBytes })

  const tokenizer = await openTokenizer(req.modelDir)
  const read: ReadOptions = {
    ...DEFAULT_READ_OPTIONS,
    ...env.read,
    fields: req.field === undefined ? null : Array.isArray(req.field) ? req.field : splitFieldList(req.field),
    separator: plan.format === 'txt' ? (req.separator ?? null) : null,
    onBadLine: req.onBadLine ?? 'stop',
  }
  const split: SplitOptions = {
    ...DEFAULT_SPLIT,
    ...env.split,
    ...(req.heldOutFraction !== undefined ? { heldOutFraction: req.heldOutFraction } : {}),
    ...(req.seed !== undefined ? { seed: req.seed } : {}),
  }

  await mkdir(env.datasetsDir, { recursive: true })
  await removeStaleImports(env.datasetsDir)

  progress.set({ phase: 'hashing' })
  const cache = await FileHashCache.open(join(env.datasetsDir, HASH_CACHE_FILE))
  let hashed = 0
  const contentHash = await hashSource(plan, cache, signal, (n) => {
    hashed += n
    progress.set({ bytesDone: hashed })
  })
  await cache.save().catch(() => undefined) // a cache that cannot be saved only costs time

  // Everything that changes the tokens goes into the id; nothing else does.
  const options = {
    reader: READER_VERSION,
    format: plan.format,
    fields: read.fields,
    joinWith: read.fields && read.fields.length > 1 ? read.joinWith : null,
    separator: read.separator,
    onBadLine: read.onBadLine,
    maxRecordBytes: read.maxRecordBytes,
    maxPieceChars: read.maxPieceChars,
    split,
  }
  const id = createHash('sha256')
    .update(JSON.stringify({ schema: DATASET_SCHEMA_VERSION, contentHash, tokenizer: tokenizer.hash, options }))
    .digest('hex')
    .slice(0, 16)
  const finalDir = join(env.datasetsDir, id)

  const existing = await readManifest(finalDir).catch(() => null)
  if (existing) {
    progress.set({ phase: 'done', bytesDone: plan.totalBytes, documents: existing.stats.total.documents, tokens: existing.stats.total.tokens })
    progress.flush()
    return { id, dir: finalDir, cached: true, manifest: existing }
  }
  // A folder with this id but no manifest is debris from an older crash.
  await rm(finalDir, { recursive: true, force: true })

  const workDir = join(env.datasetsDir, `${IMPORTING_PREFIX}${process.pid}-${id}-${randomBytes(4).toString('hex')}`)
  await mkdir(workDir)
  activeWorkDirs.add(basename(workDir))
  let writer: DatasetWriter | null = null
  let pool: TokenizePool | null = null
  try {
    const workers = env.workers ?? Math.max(1, Math.min(availableParallelism(), Math.ceil(plan.totalBytes / (2 << 20))))
    pool = await TokenizePool.start(req.modelDir, workers)
    signal?.throwIfAborted()
    writer = await DatasetWriter.create(workDir, {
      bytesPerToken: tokenizer.vocabSize <= 65536 ? 2 : 4,
      shardBytes: env.shardBytes,
      io: env.io,
    })
    const log = new ImportLog(read.onBadLine)
    let textFields: string[] | null = read.fields
    progress.set({ phase: 'tokenizing', bytesDone: 0 })
    progress.startRate()
    const tokenizeStart = performance.now()
    const encodeMs = await tokenizeInto(plan, read, log, pool, writer, progress, signal, (f) => (textFields = f))
    const tokenizeSeconds = (performance.now() - tokenizeStart) / 1000

    progress.set({ phase: 'finalizing', bytesDone: plan.totalBytes })
    await checkUnchanged(plan)
    const files = await writer.finish()
    const lengths = writer.lengths.view()
    if (lengths.length === 0) {
      const notes = log.summary()
      throw new DatasetInputError(
        `No text found in ${path}${notes.length ? ` (${notes.join('; ')})` : ''}. ` +
          (log.messages.length ? `First problem: ${log.messages[0]}.` : 'Check that the files hold text.'),
      )
    }
    const heldOut = chooseHeldOut(lengths.length, split)
    const heldOutFile = await writeHeldOut(workDir, heldOut, env.io)
    const stats = computeStats(lengths, heldOut)
    const manifest: DatasetManifest = {
      schema: DATASET_SCHEMA_VERSION,
      kind: 'longctx-dataset',
      id,
      name: basename(path),
      createdAt: new Date().toISOString(),
      source: { path, format: plan.format, files: plan.files.length, bytes: plan.totalBytes, contentHash, textFields },
      options,
      tokenizer: {
        hash: tokenizer.hash,
        kind: tokenizer.kind,
        vocabSize: tokenizer.vocabSize,
        eosTokenId: tokenizer.eosTokenId,
        modelDir: resolve(req.modelDir),
      },
      tokens: {
        dtype: writer.bytesPerToken === 2 ? 'uint16' : 'uint32',
        count: writer.totalTokens,
        written: files.written,
        shardTokens: writer.shardTokens,
        shards: files.shards,
      },
      documents: { ...files.documents, count: lengths.length, recordBytes: 16 },
      split: {
        ...heldOutFile,
        seed: split.seed,
        heldOutFraction: split.heldOutFraction,
        minHeldOutDocuments: split.minHeldOutDocuments,
        maxHeldOutDocuments: split.maxHeldOutDocuments,
        heldOutDocuments: heldOut.length,
      },
      stats,
      import: {
        seconds: Math.round((performance.now() - started) / 10) / 100,
        mbPerSec: tokenizeSeconds > 0 ? Math.round((plan.totalBytes / 1e6 / tokenizeSeconds) * 100) / 100 : 0,
        notes: [...log.summary(), ...log.messages],
        workers: pool.size,
        // Share of the workers' time spent encoding: near 1, the tokenizer is the limit; well
        // below, the main thread (reading, parsing, writing) is.
        workerBusy: tokenizeSeconds > 0 ? Math.round((encodeMs / 1000 / (pool.size * tokenizeSeconds)) * 100) / 100 : 0,
      },
    }
    await pool.close()
    pool = null
    signal?.throwIfAborted()
    await writeFileAtomic(join(workDir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n')
    await fsyncDir(workDir)
    try {
      await rename(workDir, finalDir)
    } catch (err) {
      // Another import of the same data finished first: use it.
      const other = await readManifest(finalDir).catch(() => null)
      if (!other) throw err
      await rm(workDir, { recursive: true, force: true })
      return { id, dir: finalDir, cached: true, manifest: other }
    }
    await fsyncDir(env.datasetsDir)
    progress.set({ phase: 'done', documents: stats.total.documents, tokens: stats.total.tokens })
    progress.flush()
    return { id, dir: finalDir, cached: false, manifest }
  } catch (err) {
    await writer?.abandon().catch(() => undefined)
    await pool?.close().catch(() => undefined)
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined)
    throw describeWriteError(err, env.datasetsDir)
  } finally {
    activeWorkDirs.delete(basename(workDir))
  }
}

/** 'title,text' -> ['title', 'text'] (the CLI's and the API's way to join fields). */
export function splitFieldList(field: string): string[] {
  return field
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean)
}

async function openTokenizer(modelDir: string) {
  try {
    return await loadTokenizer(modelDir)
  } catch (err) {
    const e = err as Error
    if (e.name === 'TokenizerFileError' || (err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ApiError('bad_input', `The model folder ${modelDir} has no usable tokenizer: ${e.message}`)
    }
    throw err
  }
}

/** The read -> tokenize -> write pipeline; batches are committed in order, so output is deterministic. */
async function tokenizeInto(
  plan: SourcePlan,
  read: ReadOptions,
  log: ImportLog,
  pool: TokenizePool,
  writer: DatasetWriter,
  progress: ProgressMeter,
  signal: AbortSignal | undefined,
  onFields: (fields: string[]) => void,
): Promise<number> {
  interface Meta {
    last: boolean
    discard: boolean
    bytesEnd: number
  }
  interface Batch {
    result: Promise<BatchResult>
    meta: Meta[]
  }
  const inFlight: Batch[] = []
  const maxInFlight = pool.size * 2
  let texts: string[] = []
  let meta: Meta[] = []
  let chars = 0
  let documents = 0
  let tokens = 0
  let encodeMs = 0

  const submit = () => {
    if (!texts.length) return
    const result = pool.encode(texts)
    result.catch(() => undefined) // awaited in order below; this only silences early rejections
    inFlight.push({ result, meta })
    texts = []
    meta = []
    chars = 0
  }
  const commitOne = async () => {
    const batch = inFlight.shift()!
    const r = await batch.result
    encodeMs += r.encodeMs
    let at = 0
    for (let i = 0; i < batch.meta.length; i++) {
      const m = batch.meta[i]!
      const n = r.lengths[i]!
      if (m.discard) writer.discardDocument()
      else {
        await writer.append(r.ids.subarray(at, at + n))
        tokens += n
        if (m.last) {
          if ((await writer.endDocument()) > 0) documents++
          else log.emptyDocuments++
        }
      }
      at += n
      progress.set({ bytesDone: m.bytesEnd, documents, tokens })
    }
    signal?.throwIfAborted()
  }

  try {
    const ctx = {
      options: read,
      log,
      signal,
      onSchema: (s: { textFields: string[] }) => onFields(s.textFields),
    }
    for await (const piece of readDocuments(plan, ctx)) {
      texts.push(piece.text)
      meta.push({ last: piece.last, discard: piece.discard === true, bytesEnd: piece.bytesEnd })
      chars += piece.text.length
      if (chars >= BATCH_CHARS || texts.length >= BATCH_MAX_PIECES) {
        submit()
        while (inFlight.length >= maxInFlight) await commitOne()
      }
    }
    submit()
    while (inFlight.length) await commitOne()
    return encodeMs
  } finally {
    // On failure, let the batches still running finish or fail quietly before the pool closes.
    for (const b of inFlight) b.result.catch(() => undefined)
  }
}

/** The id was computed from the files' hashes before reading them: they must not have changed since. */
async function checkUnchanged(plan: SourcePlan): Promise<void> {
  for (const f of plan.files) {
    const now = await stat(f.path).catch(() => null)
    if (!now || now.size !== f.sizeBytes || now.mtimeMs !== f.mtimeMs) {
      throw new DatasetInputError(`${f.path} changed while it was being imported. Import it again once it is no longer being written.`)
    }
  }
}

async function fsyncDir(dir: string): Promise<void> {
  // Makes the renames durable on Linux/macOS; Windows cannot open folders this way, and does
  // not need it.
  try {
    const h = await open(dir, 'r')
    try {
      await h.sync()
    } finally {
      await h.close()
    }
  } catch {
    // best effort
  }
}

/** Turns a full disk or a read-only folder into a message that says what happened and what to do. */
function describeWriteError(err: unknown, datasetsDir: string): unknown {
  const code = (err as NodeJS.ErrnoException)?.code
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new ApiError(
      'bad_input',
      `The disk is full: writing the dataset to ${datasetsDir} failed (${code}). The partial import was removed. ` +
        'Free some space (or move the data folder in Settings) and import again.',
    )
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new ApiError(
      'permission',
      `The app cannot write to ${datasetsDir} (${code}). The partial import was removed. Pick a data folder you can write to in Settings.`,
    )
  }
  return err
}

/** Removes import folders whose process is gone (a crash or kill -9 during an import). */
export async function removeStaleImports(datasetsDir: string): Promise<number> {
  let removed = 0
  let names: string[]
  try {
    names = await readdir(datasetsDir)
  } catch {
    return 0
  }
  for (const name of names) {
    if (!name.startsWith(IMPORTING_PREFIX)) continue
    const pid = Number(name.slice(IMPORTING_PREFIX.length).split('-')[0])
    // Another live process's import, or one of ours still running, is left alone.
    if (pid === process.pid ? activeWorkDirs.has(name) : Number.isInteger(pid) && processAlive(pid)) continue
    await rm(join(datasetsDir, name), { recursive: true, force: true }).catch(() => undefined)
    removed++
  }
  return removed
}

const activeWorkDirs = new Set<string>()

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Throttled progress with throughput and ETA over the tokenizing phase. */
class ProgressMeter {
  private state: ImportProgress = {
    phase: 'scanning',
    bytesDone: 0,
    bytesTotal: 0,
    documents: 0,
    tokens: 0,
    mbPerSec: 0,
    etaSeconds: null,
  }
  private lastEmit = 0
  private rateStart = 0
  private dirty = false

  constructor(
    private readonly sink: ((p: ImportProgress) => void) | undefined,
    private readonly intervalMs: number,
  ) {}

  startRate(): void {
    this.rateStart = performance.now()
  }

  set(patch: Partial<ImportProgress>): void {
    const phaseChanged = patch.phase !== undefined && patch.phase !== this.state.phase
    Object.assign(this.state, patch)
    this.dirty = true
    const now = performance.now()
    if (phaseChanged || now - this.lastEmit >= this.intervalMs) this.emit(now)
  }

  /** Sends the latest figures if they were not sent yet. */
  flush(): void {
    if (this.dirty) this.emit(performance.now())
  }

  private emit(now: number): void {
    if (!this.sink) return
    this.lastEmit = now
    this.dirty = false
    const s = this.state
    if (s.phase === 'tokenizing' && this.rateStart > 0) {
      const seconds = (now - this.rateStart) / 1000
      s.mbPerSec = seconds > 0.05 ? Math.round((s.bytesDone / 1e6 / seconds) * 100) / 100 : 0
      s.etaSeconds = s.mbPerSec > 0 ? Math.round((s.bytesTotal - s.bytesDone) / 1e6 / s.mbPerSec) : null
    } else if (s.phase === 'done') s.etaSeconds = 0
    this.sink({ ...s })
  }
}
