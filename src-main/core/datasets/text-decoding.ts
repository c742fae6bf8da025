// Streaming UTF-8 decoding that refuses what is not text: a NUL byte (binary files, UTF-16) or an
// invalid UTF-8 sequence stops the import with the file and the byte offset, instead of silently
// turning bytes into U+FFFD and training on garbage. Chunks may end in the middle of a character;
// the incomplete tail is carried to the next chunk.
import { isUtf8 } from 'node:buffer'
import { ApiError } from '../../api/contract.ts'

export class DatasetInputError extends ApiError {
  constructor(message: string) {
    super('bad_input', message)
  }
}

export class Utf8ChunkDecoder {
  private carry: Buffer = Buffer.alloc(0)
  private offset = 0 // file offset of the first byte of `carry` (or of the next chunk)
  private line = 1
  private first = true

  constructor(private readonly file: string) {}

  /** Bytes consumed so far (complete characters only). */
  get bytesDecoded(): number {
    return this.offset
  }

  /** Decodes `chunk` (plus the carried tail of the previous one); throws on binary or bad UTF-8. */
  push(chunk: Buffer): string {
    const bytes = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk
    let skip = 0
    if (this.first && bytes.length > 0) {
      if (bytes.length < 3 && isPrefixOf(bytes, [0xef, 0xbb, 0xbf])) {
        // Too short to tell whether this is a BOM; wait for more bytes.
        this.carry = Buffer.from(bytes)
        return ''
      }
      this.first = false
      checkUtf16Bom(bytes, this.file)
      if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) skip = 3
    }
    const nul = bytes.indexOf(0, skip)
    if (nul >= 0) throw binaryError(this.file, this.offset + nul)
    const end = completeEnd(bytes)
    const body = bytes.subarray(skip, end)
    if (!isUtf8(body)) {
      const bad = firstInvalidUtf8(body)
      throw invalidUtf8Error(this.file, this.offset + skip + bad, this.line + countNewlines(body, bad))
    }
    this.line += countNewlines(body, body.length)
    this.carry = end < bytes.length ? Buffer.from(bytes.subarray(end)) : Buffer.alloc(0)
    this.offset += end
    return body.toString('utf8')
  }

  /** Call at end of file: a dangling partial character is invalid UTF-8. */
  end(): string {
    if (this.carry.length === 0) return ''
    if (this.first) {
      // A file of 1-2 bytes that looked like the start of a BOM.
      this.first = false
      const text = this.carry
      this.carry = Buffer.alloc(0)
      if (!isUtf8(text)) throw invalidUtf8Error(this.file, this.offset + firstInvalidUtf8(text), this.line)
      this.offset += text.length
      return text.toString('utf8')
    }
    throw invalidUtf8Error(this.file, this.offset, this.line, 'the file ends in the middle of a character')
  }
}

function isPrefixOf(bytes: Buffer, prefix: number[]): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== prefix[i]) return false
  return true
}

function checkUtf16Bom(bytes: Buffer, file: string): void {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new DatasetInputError(
      `${file} is UTF-16 text (it starts with a UTF-16 byte order mark). Save it as UTF-8 and import it again.`,
    )
  }
}

export function binaryError(file: string, offset: number): DatasetInputError {
  return new DatasetInputError(
    `${file} looks like a binary file, not text (a NUL byte at byte offset ${offset}). ` +
      'Import plain text (.txt, .md), JSON lines, JSON, CSV or Parquet; if it is UTF-16 text, save it as UTF-8.',
  )
}

export function invalidUtf8Error(file: string, offset: number, line: number, why = ''): DatasetInputError {
  return new DatasetInputError(
    `${file} is not valid UTF-8 at byte offset ${offset} (line ${line})${why ? `: ${why}` : ''}. ` +
      'Convert the file to UTF-8 (for example `iconv -f cp1251 -t utf-8 in.txt > out.txt` for Windows-1251 text) and import it again.',
  )
}

/**
 * Length of the prefix of `bytes` that ends on a character boundary: a trailing lead byte whose
 * continuation bytes have not arrived yet is left for the next chunk.
 */
export function completeEnd(bytes: Uint8Array): number {
  const n = bytes.length
  // Look back at most 3 bytes for the lead byte of the last character.
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = bytes[n - back]!
    if ((b & 0xc0) === 0x80) continue // continuation byte: keep looking for the lead
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1
    // A lead byte whose sequence is not complete yet: cut before it. Anything else (ASCII,
    // complete sequence, or an invalid byte) is left for the validator to judge.
    return need > back && b >= 0xc0 && b <= 0xf4 ? n - back : n
  }
  return n
}

/** Offset of the first byte that is not part of a valid UTF-8 sequence (RFC 3629), or length. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length
  let i = 0
  while (i < n) {
    const b = bytes[i]!
    if (b < 0x80) {
      i++
      continue
    }
    let need: number
    let min: number
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1
      min = 0x80
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2
      min = 0x800
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3
      min = 0x10000
    } else {
      return i
    }
    let cp = b & (0x3f >> need)
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k]
      if (c === undefined || (c & 0xc0) !== 0x80) return i
      cp = (cp << 6) | (c & 0x3f)
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i
    i += need + 1
  }
  return n
}

function countNewlines(bytes: Uint8Array, end: number): number {
  let count = 0
  let i = -1
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (;;) {
    i = buf.indexOf(10, i + 1)
    if (i < 0 || i >= end) return count
    count++
  }
}
