// GPT-2's byte-level alphabet: every byte gets a printable, non-whitespace code point so that BPE
// vocabularies can be stored as JSON strings. Bytes that are already printable Latin-1 map to
// themselves; the other 68 bytes are shifted up to U+0100.. in byte order. This table is part of
// the file format (vocab.json / merges.txt spell tokens with it), so it must never change.

function buildByteToChar(): string[] {
  const table: string[] = new Array(256)
  const isPrintable = (b: number): boolean =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
  let shifted = 0
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCharCode(isPrintable(b) ? b : 256 + shifted++)
  }
  return table
}

/** byte value -> its one-character spelling in vocab.json / merges.txt */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar()

/** code point -> byte value, or -1 for characters outside the byte-level alphabet */
export const CHAR_TO_BYTE: Int16Array = (() => {
  const table = new Int16Array(0x200).fill(-1)
  BYTE_TO_CHAR.forEach((ch, b) => {
    table[ch.charCodeAt(0)] = b
  })
  return table
})()

/** Spell raw bytes in the byte-level alphabet (what a vocab.json key looks like). */
export function bytesToByteLevel(bytes: Uint8Array): string {
  let s = ''
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]!]
  return s
}

/**
 * The bytes a byte-level token string stands for, or null when some character is outside the
 * alphabet (as happens for added tokens such as "<|endoftext|>" written with other characters).
 */
export function byteLevelToBytes(token: string): Uint8Array | null {
  const out = new Uint8Array(token.length)
  for (let i = 0; i < token.length; i++) {
    const code = token.charCodeAt(i)
    const b = code < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[code]! : -1
    if (b < 0) return null
    out[i] = b
  }
  return out
}
