// The on-disk form of a tokenized dataset, one folder per dataset:
//
//   <dataDir>/datasets/<id>/
//     tokens-00000.bin …   token ids, little-endian uint16 (vocabulary <= 65536) or uint32, in
//                          fixed-size shards (256 MiB): global token t lives in shard
//                          floor(t / shardTokens) at index t % shardTokens
//     documents.bin        per document 16 bytes: token offset (uint64 LE), length (uint32 LE),
//                          reserved (uint32, 0)
//     heldout.bin          indices of the held-out documents (uint32 LE, ascending)
//     manifest.json        written last, atomically: a folder without it is not a dataset
//
// Documents are stored without separators; the sampler adds end-of-text where it packs. Tokens of
// a document dropped midway (a bad file found after part of it was written) stay in the shard
// unreferenced; the document index alone says what the dataset holds.
//
// Reading uses positional reads (FileHandle.read at an offset) so a dataset of many GB never has
// to be in memory: the reader holds only the document index (12 bytes per document).
import { createHash, type Hash } from 'node:crypto'
import { open, readFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { DatasetFormat, DatasetStats } from '../../api/datasets.ts'
import { DatasetInputError } from './text-decoding.ts'

export const DATASET_SCHEMA_VERSION = 1
export const MANIFEST_FILE = 'manifest.json'
export const DOCUMENTS_FILE = 'documents.bin'
export const HELDOUT_FILE = 'heldout.bin'
export const DOC_RECORD_BYTES = 16
export const DEFAULT_SHARD_BYTES = 256 * 1024 * 1024
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

export interface ManifestFile {
  file: string
  bytes: number
  sha256: string
}

export interface DatasetManifest {
  schema: number
  kind: 'longctx-dataset'
  id: string
  name: string
  createdAt: string
  source: {
    path: string
    format: DatasetFormat
    files: number
    bytes: number
    contentHash: string
    textFields: string[] | null
  }
  /** The normalized import options that went into the id. */
  options: Record<string, unknown>
  tokenizer: { hash: string; kind: string; vocabSize: number; eosTokenId: number | null; modelDir: string }
  tokens: {
    dtype: 'uint16' | 'uint32'
    count: number // tokens referenced by documents
    written: number // tokens in the shards (>= count when documents were dropped)
    shardTokens: number
    shards: ManifestFile[]
  }
  documents: { count: number; recordBytes: number } & ManifestFile
  split: {
    seed: number
    heldOutFraction: number
    minHeldOutDocuments: number
    maxHeldOutDocuments: number
    heldOutDocuments: number
  } & ManifestFile
  stats: DatasetStats
  import: { seconds: number; mbPerSec: number; notes: string[]; workers: number; workerBusy?: number }
}

// ---- writing -------------------------------------------------------------------------------

/** The one place bytes reach the disk, so a test can make it fail like a full disk. */
export interface WriteIO {
  write(handle: FileHandle, data: Uint8Array, position: number): Promise<void>
}

export const nodeWriteIO: WriteIO = {
  async write(handle, data, position) {
    let done = 0
    while (done < data.length) {
      const { bytesWritten } = await handle.write(data, done, data.length - done, position + done)
      done += bytesWritten
    }
  },
}

/** Appends to one file through WriteIO, hashing what it writes. */
class HashedFile {
  private position = 0
  private readonly hash: Hash = createHash('sha256')
  private constructor(
    readonly name: string,
    private readonly handle: FileHandle,
    private readonly io: WriteIO,
  ) {}

  static async create(dir: string, name: string, io: WriteIO): Promise<HashedFile> {
    return new HashedFile(name, await open(join(dir, name), 'wx'), io)
  }

  async append(data: Uint8Array): Promise<void> {
    if (data.length === 0) return
    await this.io.write(this.handle, data, this.position)
    this.hash.update(data)
    this.position += data.length
  }

  /** fsyncs and closes; the data must be on disk before the manifest says it is there. */
  async close(): Promise<ManifestFile> {
    try {
      await this.handle.sync()
    } finally {
      await this.handle.close()
    }
    return { file: this.name, bytes: this.position, sha256: this.hash.digest('hex') }
  }

  async abandon(): Promise<void> {
    await this.handle.close().catch(() => undefined)
  }
}

/** A growable Uint32Array (document lengths kept in memory for the split and the statistics). */
export class U32List {
  private data = new Uint32Array(1024)
  length = 0
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Uint32Array(this.data.length * 2)
      next.set(this.data)
      this.data = next
    }
    this.data[this.length++] = v
  }
  view(): Uint32Array {
    return this.data.subarray(0, this.length)
  }
}

export interface DatasetWriterOptions {
  bytesPerToken: 2 | 4
  shardBytes?: number
  io?: WriteIO
}

export class DatasetWriter {
  readonly bytesPerToken: 2 | 4
  readonly shardTokens: number
  private readonly io: WriteIO
  private readonly shards: ManifestFile[] = []
  private shard: HashedFile | null = null
  private shardFill = 0 // tokens in the current shard
  private written = 0 // tokens written in all shards
  private docStart = 0
  private docLength = 0
  private documentsFile!: HashedFile
  private docBuf = Buffer.alloc(DOC_RECORD_BYTES * 4096)
  private docBufFill = 0
  private tokBuf: Buffer
  private tokU16: Uint16Array
  private tokU32: Uint32Array
  private tokBufFill = 0 // bytes
  readonly lengths = new U32List()
  totalTokens = 0

  private constructor(
    readonly dir: string,
    opts: DatasetWriterOptions,
  ) {
    this.bytesPerToken = opts.bytesPerToken
    const shardBytes = opts.shardBytes ?? DEFAULT_SHARD_BYTES
    this.shardTokens = Math.max(1, Math.floor(shardBytes / this.bytesPerToken))
    this.io = opts.io ?? nodeWriteIO
    const bufBytes = Math.min(8 << 20, this.shardTokens * this.bytesPerToken)
    const backing = new ArrayBuffer(bufBytes)
    this.tokBuf = Buffer.from(backing)
    this.tokU16 = new Uint16Array(backing, 0, bufBytes >> 1)
    this.tokU32 = new Uint32Array(backing, 0, bufBytes >> 2)
  }

  static async create(dir: string, opts: DatasetWriterOptions): Promise<DatasetWriter> {
    const w = new DatasetWriter(dir, opts)
    w.documentsFile = await HashedFile.create(dir, DOCUMENTS_FILE, w.io)
    return w
  }

  /** Tokens of the current document, in order. */
  async append(ids: Int32Array): Promise<void> {
    const bpt = this.bytesPerToken
    let i = 0
    while (i < ids.length) {
      if (this.tokBufFill === this.tokBuf.length) await this.flushTokens()
      const room = Math.min((this.tokBuf.length - this.tokBufFill) / bpt, this.shardTokens - this.shardFill - this.tokBufFill / bpt)
      if (room <= 0) {
        await this.flushTokens()
        continue
      }
      const n = Math.min(room, ids.length - i)
      const at = this.tokBufFill
      if (LITTLE_ENDIAN) {
        // Ids are in [0, vocabSize), so the typed conversion is exact; one native copy.
        ;(bpt === 2 ? this.tokU16 : this.tokU32).set(ids.subarray(i, i + n), at / bpt)
      } else if (bpt === 2) {
        for (let k = 0; k < n; k++) this.tokBuf.writeUInt16LE(ids[i + k]!, at + k * 2)
      } else {
        for (let k = 0; k < n; k++) this.tokBuf.writeUInt32LE(ids[i + k]!, at + k * 4)
      }
      this.tokBufFill = at + n * bpt
      i += n
      this.docLength += n
    }
  }

  private async flushTokens(): Promise<void> {
    if (this.tokBufFill === 0) {
      if (this.shard && this.shardFill === this.shardTokens) await this.closeShard()
      return
    }
    if (!this.shard) this.shard = await HashedFile.create(this.dir, shardName(this.shards.length), this.io)
    await this.shard.append(this.tokBuf.subarray(0, this.tokBufFill))
    const n = this.tokBufFill / this.bytesPerToken
    this.shardFill += n
    this.written += n
    this.tokBufFill = 0
    if (this.shardFill === this.shardTokens) await this.closeShard()
  }

  private async closeShard(): Promise<void> {
    if (!this.shard) return
    this.shards.push(await this.shard.close())
    this.shard = null
    this.shardFill = 0
  }

  /** Global token offset where the next token goes. */
  private get position(): number {
    return this.written + this.tokBufFill / this.bytesPerToken
  }

  /** Ends the current document; an empty one is not recorded. Returns its length. */
  async endDocument(): Promise<number> {
    const length = this.docLength
    if (length > 0) {
      if (this.docBufFill === this.docBuf.length) await this.flushDocs()
      const at = this.docBufFill
      this.docBuf.writeUInt32LE(this.docStart % 2 ** 32, at)
      this.docBuf.writeUInt32LE(Math.floor(this.docStart / 2 ** 32), at + 4)
      this.docBuf.writeUInt32LE(length, at + 8)
      this.docBuf.writeUInt32LE(0, at + 12)
      this.docBufFill += DOC_RECORD_BYTES
      this.lengths.push(length)
      this.totalTokens += length
    }
    this.docStart = this.position
    this.docLength = 0
    return length
  }

  /** Forgets the current document; its tokens stay in the shard, unreferenced. */
  discardDocument(): void {
    this.docStart = this.position
    this.docLength = 0
  }

  private async flushDocs(): Promise<void> {
    await this.documentsFile.append(this.docBuf.subarray(0, this.docBufFill))
    this.docBufFill = 0
  }

  /** Flushes and fsyncs everything; returns the file records for the manifest. */
  async finish(): Promise<{ shards: ManifestFile[]; documents: ManifestFile; written: number }> {
    if (this.docLength > 0) throw new Error('DatasetWriter.finish: a document is still open')
    await this.flushTokens()
    await this.closeShard()
    await this.flushDocs()
    const documents = await this.documentsFile.close()
    return { shards: this.shards, documents, written: this.written }
  }

  /** Closes handles after a failure (the caller removes the folder). */
  async abandon(): Promise<void> {
    await this.shard?.abandon()
    await this.documentsFile?.abandon()
  }
}

export function shardName(i: number): string {
  return `tokens-${String(i).padStart(5, '0')}.bin`
}

export async function writeHeldOut(dir: string, indices: Uint32Array, io: WriteIO = nodeWriteIO): Promise<ManifestFile> {
  const f = await HashedFile.create(dir, HELDOUT_FILE, io)
  try {
    const buf = Buffer.alloc(indices.length * 4)
    for (let i = 0; i < indices.length; i++) buf.writeUInt32LE(indices[i]!, i * 4)
    await f.append(buf)
  } catch (err) {
    await f.abandon()
    throw err
  }
  return f.close()
}

// ---- reading -------------------------------------------------------------------------------

export async function readManifest(dir: string): Promise<DatasetManifest> {
  let text: string
  try {
    text = await readFile(join(dir, MANIFEST_FILE), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DatasetInputError(`${dir} is not an imported dataset (no ${MANIFEST_FILE}); import it again.`)
    }
    throw err
  }
  let m: DatasetManifest
  try {
    m = JSON.parse(text)
  } catch {
    throw new DatasetInputError(`${join(dir, MANIFEST_FILE)} is damaged (not JSON); delete the folder and import again.`)
  }
  if (m.kind !== 'longctx-dataset' || m.schema !== DATASET_SCHEMA_VERSION) {
    throw new DatasetInputError(
      `${dir} holds a dataset of format version ${String(m.schema)}, this app reads version ${DATASET_SCHEMA_VERSION}; import it again.`,
    )
  }
  return m
}

/**
 * Random access to a dataset's tokens through positional reads. Windows may span documents'
 * shard boundaries; they are stitched from two reads.
 */
export class DatasetReader {
  /** Token offset of each document. */
  readonly offsets: Float64Array
  /** Length in tokens of each document. */
  readonly lengths: Uint32Array
  /** Ascending indices of the held-out documents. */
  readonly heldOut: Uint32Array
  /** Ascending indices of the training documents. */
  readonly train: Uint32Array
  private readonly handles: Array<FileHandle | null>
  private scratch = new ArrayBuffer(1 << 16)
  private closed = false

  private constructor(
    readonly dir: string,
    readonly manifest: DatasetManifest,
    offsets: Float64Array,
    lengths: Uint32Array,
    heldOut: Uint32Array,
  ) {
    this.offsets = offsets
    this.lengths = lengths
    this.heldOut = heldOut
    const isHeld = new Uint8Array(lengths.length)
    for (const i of heldOut) isHeld[i] = 1
    this.train = new Uint32Array(lengths.length - heldOut.length)
    let t = 0
    for (let i = 0; i < lengths.length; i++) if (!isHeld[i]) this.train[t++] = i
    this.handles = manifest.tokens.shards.map(() => null)
  }

  static async open(dir: string): Promise<DatasetReader> {
    const manifest = await readManifest(dir)
    const docBytes = await readFile(join(dir, manifest.documents.file))
    const n = manifest.documents.count
    if (docBytes.length !== n * DOC_RECORD_BYTES) {
      throw new DatasetInputError(`${join(dir, manifest.documents.file)} is damaged (wrong size); import the dataset again.`)
    }
    const offsets = new Float64Array(n)
    const lengths = new Uint32Array(n)
    for (let i = 0; i < n; i++) {
      const at = i * DOC_RECORD_BYTES
      offsets[i] = docBytes.readUInt32LE(at) + docBytes.readUInt32LE(at + 4) * 2 ** 32
      lengths[i] = docBytes.readUInt32LE(at + 8)
    }
    const heldBytes = await readFile(join(dir, manifest.split.file))
    const heldOut = new Uint32Array(heldBytes.length / 4)
    for (let i = 0; i < heldOut.length; i++) heldOut[i] = heldBytes.readUInt32LE(i * 4)
    return new DatasetReader(dir, manifest, offsets, lengths, heldOut)
  }

  get documentCount(): number {
    return this.lengths.length
  }

  get eosTokenId(): number | null {
    return this.manifest.tokenizer.eosTokenId
  }

  private async handle(shard: number): Promise<FileHandle> {
    if (this.closed) throw new Error('DatasetReader is closed')
    let h = this.handles[shard]
    if (!h) {
      const info = this.manifest.tokens.shards[shard]
      if (!info) throw new Error(`token ${shard * this.manifest.tokens.shardTokens} is past the end of the dataset`)
      h = await open(join(this.dir, info.file), 'r')
      this.handles[shard] = h
    }
    return h
  }

  /** Reads `count` tokens starting at global token `start` into out[outOffset…]. */
  async readTokens(start: number, count: number, out: Int32Array, outOffset = 0): Promise<void> {
    const { shardTokens, dtype } = this.manifest.tokens
    const bpt = dtype === 'uint16' ? 2 : 4
    let done = 0
    while (done < count) {
      const t = start + done
      const shard = Math.floor(t / shardTokens)
      const inShard = t - shard * shardTokens
      const n = Math.min(count - done, shardTokens - inShard)
      const bytes = n * bpt
      if (this.scratch.byteLength < bytes) this.scratch = new ArrayBuffer(Math.max(bytes, this.scratch.byteLength * 2))
      const raw = new Uint8Array(this.scratch, 0, bytes)
      const fh = await this.handle(shard)
      let got = 0
      while (got < bytes) {
        const { bytesRead } = await fh.read(raw, got, bytes - got, inShard * bpt + got)
        if (bytesRead === 0) throw new DatasetInputError(`${this.dir}: token shard ${shard} is shorter than the manifest says; import again.`)
        got += bytesRead
      }
      const o = outOffset + done
      if (LITTLE_ENDIAN) {
        // The file is little-endian like the host: a typed view converts in one native copy.
        out.set(bpt === 2 ? new Uint16Array(this.scratch, 0, n) : new Uint32Array(this.scratch, 0, n), o)
      } else {
        const view = new DataView(this.scratch, 0, bytes)
        if (bpt === 2) for (let k = 0; k < n; k++) out[o + k] = view.getUint16(k * 2, true)
        else for (let k = 0; k < n; k++) out[o + k] = view.getUint32(k * 4, true)
      }
      done += n
    }
  }

  /** Reads tokens [from, from + count) of document `doc`. */
  async readDocument(doc: number, from: number, count: number, out: Int32Array, outOffset = 0): Promise<void> {
    const len = this.lengths[doc]
    if (len === undefined || from < 0 || from + count > len) {
      throw new RangeError(`document ${doc}: tokens [${from}, ${from + count}) are outside its ${len ?? 0} tokens`)
    }
    await this.readTokens(this.offsets[doc]! + from, count, out, outOffset)
  }

  async close(): Promise<void> {
    this.closed = true
    const hs = this.handles.splice(0)
    await Promise.all(hs.map((h) => h?.close()))
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}
