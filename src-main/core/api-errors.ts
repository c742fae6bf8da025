// Failures of export and chat as the contract's ApiError, so the user reads what is wrong with
// their file or disk instead of "Unexpected error". Errors that already are ApiErrors (the
// engine's EngineError included) pass through unchanged.
import { ApiError } from '../api/contract.ts'

export function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e
  const err = e instanceof Error ? e : new Error(String(e))
  if (err.name === 'TokenizerFileError' || err.name === 'SafetensorsError') return new ApiError('bad_input', err.message)
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return new ApiError('not_found', err.message)
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new ApiError('permission', `${err.message}; the app may not write there`)
    case 'ENOSPC':
      return new ApiError('engine', `${err.message}: the disk is full; free some space or pick another place`)
  }
  return new ApiError('internal', `Unexpected error: ${err.message}`)
}
