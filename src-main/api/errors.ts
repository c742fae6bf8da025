// API errors, kept free of any schema library so the renderer can import them cheaply.

export type ApiErrorCode =
  | 'invalid_argument' // the call's arguments failed their schema
  | 'unknown_method'
  | 'not_found' // a path or id that does not exist
  | 'permission' // a path the app may not read or write
  | 'bad_input' // a file that is not what it should be (model, dataset…)
  | 'engine' // the native engine reported a failure
  | 'busy' // conflicting operation in progress
  | 'unauthorized' // web mode: missing or wrong token
  | 'internal'

export interface ApiErrorBody {
  code: ApiErrorCode
  message: string // for the user: what is wrong and what to do
  details?: string // e.g. which field failed validation
}

export class ApiError extends Error {
  readonly code: ApiErrorCode
  readonly details?: string
  constructor(code: ApiErrorCode, message: string, details?: string) {
    super(message)
    this.name = 'ApiError'
    this.code = code
    this.details = details
  }
  toBody(): ApiErrorBody {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) }
  }
  static fromBody(body: ApiErrorBody): ApiError {
    return new ApiError(body.code, body.message, body.details)
  }
}

