// Every failure that reaches the UI is an ApiError, whatever transport produced it, so stores and
// components only ever handle one shape.
import { ApiError, type ApiErrorBody, type ApiErrorCode } from '@contract/errors'

const API_ERROR_CODES = [
  'invalid_argument',
  'unknown_method',
  'not_found',
  'permission',
  'bad_input',
  'engine',
  'busy',
  'unauthorized',
  'internal',
] as const satisfies readonly ApiErrorCode[]

// Compile-time guard: adding a code to the contract without listing it here fails type-checking.
type MissingCodes = Exclude<ApiErrorCode, (typeof API_ERROR_CODES)[number]>
const _allCodesListed: MissingCodes extends never ? true : false = true
void _allCodesListed

export function isApiErrorCode(value: unknown): value is ApiErrorCode {
  return typeof value === 'string' && (API_ERROR_CODES as readonly string[]).includes(value)
}

export function isApiErrorBody(value: unknown): value is ApiErrorBody {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return (
    isApiErrorCode(v.code) &&
    typeof v.message === 'string' &&
    (v.details === undefined || typeof v.details === 'string')
  )
}

// ipcRenderer.invoke wraps a rejection as "Error invoking remote method 'x': Error: msg".
const ELECTRON_PREFIX = /^Error invoking remote method '[^']*':\s*/
const ERROR_NAME_PREFIX = /^(?:ApiError|Error|TypeError):\s*/

/** Normalise anything thrown by a transport (or by our own code) into an ApiError. */
export function toApiError(reason: unknown): ApiError {
  if (reason instanceof ApiError) return reason
  if (isApiErrorBody(reason)) return ApiError.fromBody(reason)
  if (reason instanceof Error) {
    const msg = reason.message.replace(ELECTRON_PREFIX, '').replace(ERROR_NAME_PREFIX, '')
    if (msg.startsWith('{')) {
      try {
        const parsed: unknown = JSON.parse(msg)
        if (isApiErrorBody(parsed)) return ApiError.fromBody(parsed)
      } catch {
        // not a serialised body; fall through to a plain message
      }
    }
    return new ApiError('internal', msg || 'Unexpected error')
  }
  return new ApiError('internal', typeof reason === 'string' ? reason : 'Unexpected error')
}
