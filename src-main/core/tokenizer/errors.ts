/**
 * A tokenizer file that cannot be used. `file` is the path (or, for a folder problem, the folder);
 * `reason` says what is wrong in words a user can act on.
 */
export class TokenizerFileError extends Error {
  readonly file: string
  readonly reason: string

  constructor(file: string, reason: string) {
    super(`${file}: ${reason}`)
    this.name = 'TokenizerFileError'
    this.file = file
    this.reason = reason
  }
}
