// A streaming splitter for one big JSON document: a top-level array of records, or an object
// whose "data" key holds that array. JSON.parse of a multi-GB file is impossible (V8's string
// limit) and would hold everything in memory, so this scanner walks the bytes once, tracking
// strings and nesting, and hands out each array element's bytes for JSON.parse on its own.
// Elements larger than the record limit are reported (with their line) and skipped, not held.

export type JsonStreamItem =
  | { kind: 'element'; bytes: Buffer; line: number }
  | { kind: 'oversize'; line: number; bytes: number }

const enum S {
  Pre, // before the top-level value
  ObjKeyOrEnd, // in the top-level object, after '{' or ','
  ObjKey, // inside a key string
  ObjColon,
  ObjValue, // expecting a value
  ObjAfterValue, // expecting ',' or '}'
  ArrElemOrEnd, // in the records array, expecting an element or ']'
  ArrAfter, // after an element, expecting ',' or ']'
  Value, // inside a value (an element, or a skipped object value)
  Done,
}

export class JsonArrayStreamError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly offset: number,
  ) {
    super(message)
  }
}

function isWs(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
}

export class JsonArrayStream {
  private state = S.Pre
  private line = 1
  private offset = 0 // bytes before the current chunk
  // value scanner
  private depth = 0
  private inString = false
  private escape = false
  private scalar = false
  private storing = false // false while skipping a non-"data" value
  private parts: Buffer[] = []
  private partBytes = 0
  private oversize = false
  private valueLine = 1
  // top-level object
  private keyParts: number[] = []
  private currentKey = ''
  readonly keys: string[] = []
  private sawRecordsArray = false

  constructor(
    private readonly maxElementBytes: number,
    private readonly recordsKey = 'data',
  ) {}

  /** Whether the document had the array of records (false: an object without "data"). */
  get foundArray(): boolean {
    return this.sawRecordsArray
  }

  *push(chunk: Buffer): Generator<JsonStreamItem> {
    const n = chunk.length
    let i = 0
    let valueStart = -1 // start of the stored value inside this chunk
    while (i < n) {
      const b = chunk[i]!
      if (b === 0x0a) this.line++
      switch (this.state) {
        case S.Pre:
          if (isWs(b)) break
          if (b === 0x5b) {
            this.state = S.ArrElemOrEnd
            this.sawRecordsArray = true
          } else if (b === 0x7b) this.state = S.ObjKeyOrEnd
          else if (b === 0xef || b === 0xbb || b === 0xbf) {
            // a UTF-8 byte order mark at the start
            if (this.offset + i > 2) throw this.fail('expected "[" or "{"', i)
          } else throw this.fail(`the file must hold an array of records or an object with a "${this.recordsKey}" array`, i)
          break
        case S.ObjKeyOrEnd:
          if (isWs(b) || b === 0x2c) break
          if (b === 0x7d) this.state = S.Done
          else if (b === 0x22) {
            this.state = S.ObjKey
            this.keyParts = []
            this.escape = false
          } else throw this.fail('expected a key in the top-level object', i)
          break
        case S.ObjKey:
          if (this.escape) this.escape = false
          else if (b === 0x5c) this.escape = true
          else if (b === 0x22) {
            this.currentKey = decodeKey(this.keyParts)
            this.keys.push(this.currentKey)
            this.state = S.ObjColon
            break
          }
          if (this.keyParts.length < 4096) this.keyParts.push(b)
          break
        case S.ObjColon:
          if (isWs(b)) break
          if (b !== 0x3a) throw this.fail('expected ":" after a key', i)
          this.state = S.ObjValue
          break
        case S.ObjValue:
          if (isWs(b)) break
          if (this.currentKey === this.recordsKey && b === 0x5b && !this.sawRecordsArray) {
            this.sawRecordsArray = true
            this.state = S.ArrElemOrEnd
            break
          }
          this.beginValue(b, false) // skipped: not the records array
          break
        case S.ObjAfterValue:
          if (isWs(b)) break
          if (b === 0x2c) this.state = S.ObjKeyOrEnd
          else if (b === 0x7d) this.state = S.Done
          else throw this.fail('expected "," or "}" in the top-level object', i)
          break
        case S.ArrElemOrEnd:
          if (isWs(b)) break
          if (b === 0x5d) {
            this.state = this.depthOfArrayParent()
            break
          }
          if (b === 0x2c) throw this.fail('unexpected ","', i)
          this.beginValue(b, true)
          valueStart = i
          break
        case S.ArrAfter:
          if (isWs(b)) break
          if (b === 0x2c) this.state = S.ArrElemOrEnd
          else if (b === 0x5d) this.state = this.depthOfArrayParent()
          else throw this.fail('expected "," or "]" between records', i)
          break
        case S.Value: {
          let ended = false
          let endAt = i // exclusive end of the value in this chunk
          if (this.scalar) {
            if (isWs(b) || b === 0x2c || b === 0x5d || b === 0x7d) {
              ended = true
              endAt = i
            }
          } else if (this.inString) {
            if (this.escape) this.escape = false
            else if (b === 0x5c) this.escape = true
            else if (b === 0x22) {
              this.inString = false
              if (this.depth === 0) {
                ended = true
                endAt = i + 1
              }
            }
          } else if (b === 0x22) this.inString = true
          else if (b === 0x7b || b === 0x5b) this.depth++
          else if (b === 0x7d || b === 0x5d) {
            this.depth--
            if (this.depth === 0) {
              ended = true
              endAt = i + 1
            }
          }
          if (!ended) break
          const item = this.endValue(chunk, valueStart < 0 ? 0 : valueStart, endAt)
          valueStart = -1
          if (item) yield item
          if (this.scalar && endAt === i) {
            // The delimiter that ended a scalar belongs to the surrounding structure.
            this.scalar = false
            if (b === 0x0a) this.line--
            continue
          }
          this.scalar = false
          break
        }
        case S.Done:
          if (!isWs(b)) throw this.fail('unexpected data after the end of the JSON document', i)
          break
      }
      i++
    }
    if (this.state === S.Value && this.storing) this.keep(chunk, valueStart < 0 ? 0 : valueStart, n)
    this.offset += n
  }

  /** At end of input: the document must be complete. */
  end(): void {
    if (this.state === S.Value && this.scalar) {
      throw this.fail('the file ends inside a value', 0)
    }
    if (this.state !== S.Done && !(this.state === S.Pre && this.offset === 0)) {
      throw this.fail('the file ends before the JSON document is complete (truncated?)', 0)
    }
  }

  private depthOfArrayParent(): S {
    // The records array is either the top-level value or the "data" member of the top object.
    return this.keys.length > 0 ? S.ObjAfterValue : S.Done
  }

  private beginValue(b: number, store: boolean): void {
    this.state = S.Value
    this.storing = store
    this.parts = []
    this.partBytes = 0
    this.oversize = false
    this.valueLine = this.line
    this.depth = 0
    this.inString = false
    this.escape = false
    this.scalar = false
    if (b === 0x22) this.inString = true
    else if (b === 0x7b || b === 0x5b) this.depth = 1
    else this.scalar = true
  }

  private keep(chunk: Buffer, from: number, to: number): void {
    if (!this.storing || this.oversize || to <= from) return
    if (this.partBytes + (to - from) > this.maxElementBytes) {
      this.oversize = true
      this.partBytes += to - from
      this.parts = []
      return
    }
    this.parts.push(Buffer.from(chunk.subarray(from, to)))
    this.partBytes += to - from
  }

  private endValue(chunk: Buffer, from: number, to: number): JsonStreamItem | null {
    const inArray = this.storing
    this.state = inArray ? S.ArrAfter : S.ObjAfterValue
    if (!inArray) return null
    this.keep(chunk, from, to)
    if (this.oversize) {
      const bytes = this.partBytes
      this.parts = []
      return { kind: 'oversize', line: this.valueLine, bytes }
    }
    const bytes = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts)
    this.parts = []
    return { kind: 'element', bytes, line: this.valueLine }
  }

  private fail(what: string, i: number): JsonArrayStreamError {
    return new JsonArrayStreamError(what, this.line, this.offset + i)
  }
}

function decodeKey(bytes: number[]): string {
  try {
    return JSON.parse(`"${Buffer.from(bytes).toString('utf8')}"`)
  } catch {
    return Buffer.from(bytes).toString('utf8')
  }
}
