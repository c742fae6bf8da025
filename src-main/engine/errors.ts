// The one place where engine failures become the contract's ApiError: the engine's message
// (which file, which tensor) plus what the user can do about it. EngineError keeps the engine's
// status name for code that needs to tell failures apart (tests, retries on OOM).
import { ApiError, type ApiErrorCode } from '../api/contract.ts'
import { isNativeError, NativeLoadError, type LcxErrorCode } from './native.ts'

export class EngineError extends ApiError {
  readonly engineCode: LcxErrorCode | 'NATIVE_LOAD' | 'UNKNOWN'
  readonly engineMessage: string
  constructor(code: ApiErrorCode, message: string, engineCode: EngineError['engineCode'], engineMessage: string) {
    super(code, message, engineCode)
    this.name = 'EngineError'
    this.engineCode = engineCode
    this.engineMessage = engineMessage
  }
}

// What to do, per engine status. IO is split by the message: missing vs unreadable vs the rest.
function advice(code: LcxErrorCode, msg: string): { api: ApiErrorCode; hint: string } {
  switch (code) {
    case 'LCX_ERR_IO':
      if (/no such file|not found|does not exist|missing/i.test(msg))
        return {
          api: 'not_found',
          hint: 'Pick the Hugging Face model folder (config.json with model.safetensors or a sharded index)',
        }
      if (/permission denied|not permitted/i.test(msg))
        return { api: 'permission', hint: 'The app may not read or write this path; check its permissions' }
      if (/no space|disk full|quota/i.test(msg))
        return { api: 'engine', hint: 'The disk is full; free some space and try again' }
      return { api: 'bad_input', hint: '' }
    case 'LCX_ERR_FORMAT':
      return { api: 'bad_input', hint: 'The file is damaged or incomplete; download or export the model again' }
    case 'LCX_ERR_SHAPE':
      return {
        api: 'bad_input',
        hint: 'The weights do not match config.json; the folder may mix files of two different models',
      }
    case 'LCX_ERR_DTYPE':
      return {
        api: 'bad_input',
        hint: 'Save the model in float32, float16 or bfloat16 (e.g. transformers save_pretrained after model.to(torch.float16))',
      }
    case 'LCX_ERR_UNSUPPORTED':
      return { api: 'bad_input', hint: '' } // the engine's message lists what is supported
    case 'LCX_ERR_ARG':
      return { api: 'bad_input', hint: '' }
    case 'LCX_ERR_OOM':
      return {
        api: 'engine',
        hint: 'Not enough memory: use a smaller micro-batch or context, turn on activation recompute, or close other programs',
      }
    case 'LCX_ERR_BACKEND':
      return { api: 'engine', hint: '' }
    case 'LCX_ERR_NUMERIC':
      return { api: 'engine', hint: 'Training diverged (NaN/Inf); lower the learning rate or resume from an earlier checkpoint' }
    case 'LCX_ERR_DISPOSED':
      return { api: 'engine', hint: '' }
    default:
      return { api: 'engine', hint: 'This is a bug in the engine; please report it with this message' }
  }
}

// Any error thrown by the addon (or by loading it) as an EngineError; anything else unchanged.
export function toEngineError(e: unknown): unknown {
  if (e instanceof EngineError) return e
  if (e instanceof NativeLoadError) return new EngineError('engine', e.message, 'NATIVE_LOAD', e.message)
  if (isNativeError(e)) {
    const raw = e.message
    const { api, hint } = advice(e.code, raw)
    const message = hint ? `${raw.replace(/[.\s]*$/, '')}. ${hint}.` : raw
    return new EngineError(api, message, e.code, raw)
  }
  return e
}

// Runs an engine call and converts its failure.
export async function engineCall<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    throw toEngineError(e)
  }
}

export function engineCallSync<T>(fn: () => T): T {
  try {
    return fn()
  } catch (e) {
    throw toEngineError(e)
  }
}
