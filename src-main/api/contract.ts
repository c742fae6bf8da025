// The one API contract: every request (with its argument schema), every response type and every
// server-pushed event. The core implements it, both transports carry it, the renderer calls it.
// Arguments are validated with these schemas before the core sees them, whatever the transport.
import { z } from 'zod'
import { EVENT_NAMES, METHOD_NAMES } from './names.ts'
import {
  runMethodArgs,
  type MemoryEstimate,
  type RunDetail,
  type RunEvents,
  type RunPlan,
  type RunSummary,
  type StageTimeEstimate,
} from './runs.ts'
// ---- datasets (types and argument schemas live in datasets.ts) ----
import {
  datasetMethodArgs,
  type DatasetImportProgress,
  type DatasetPreview,
  type DatasetSummary,
} from './datasets.ts'
export * from './datasets.ts'
// ---- end datasets ----

export * from './runs.ts'
// ---- export and chat (types and argument schemas live in export.ts / chat.ts) ----
import { exportMethodArgs, type ExportJob, type ExportProgress } from './export.ts'
import { chatMethodArgs, type ChatDocument, type ChatSendResult, type ChatSessionInfo, type ChatTokenEvent } from './chat.ts'
export * from './export.ts'
export * from './chat.ts'
// ---- end export and chat ----

// ---- shared value types ------------------------------------------------------------------

export type Theme = 'system' | 'dark' | 'light'
export type BackendChoice = 'auto' | 'cpu' | 'cuda'

export interface Settings {
  dataDir: string
  theme: Theme
  backend: BackendChoice
}

export interface GpuInfo {
  index: number
  name: string
  totalBytes: number
  usedBytes: number
  utilizationPct: number | null
  temperatureC: number | null
  powerW: number | null
  driver: string
}

export interface SystemInfo {
  os: string // e.g. "Linux 6.1.0 (x64)"
  hostname: string
  cpuModel: string
  cpuCores: number
  totalRamBytes: number
  freeRamBytes: number
  dataDir: string
  dataDirFreeBytes: number
  dataDirTotalBytes: number
  gpus: GpuInfo[]
  gpuStatus: string // "2 NVIDIA GPUs" | "no NVIDIA GPU found (…why)"
  backends: Array<'cpu' | 'cuda'> // compiled into the native engine
  engineError: string | null // why the native engine did not load, if it did not
}

export interface AppInfo {
  version: string
  mode: 'electron' | 'web'
  platform: string
}

export interface FsEntry {
  name: string
  path: string
  kind: 'dir' | 'file'
  sizeBytes: number
  modifiedMs: number
  hidden: boolean
}

export interface FsListing {
  path: string
  parent: string | null
  entries: FsEntry[]
}

export interface FsPlaces {
  home: string
  dataDir: string
  roots: string[]
}

export type AttentionPattern = 'dense' | 'sparse' | `window:${number}`

export interface ModelInfo {
  path: string
  architecture: string // config.json architectures[0]
  family: 'gpt2' | 'rugpt3xl'
  parameters: number
  layers: number
  heads: number
  width: number
  contextLength: number // n_positions
  vocabSize: number
  attention: AttentionPattern[] // one per layer
  sparse: null | {
    block: number
    numLocalBlocks: number
    numGlobalBlocks: number
    differentLayoutPerHead: boolean
    numDifferentGlobalPatterns: number
  }
  tokenizer: null | { kind: 'tokenizer.json' | 'vocab.json+merges.txt'; files: string[] }
  dtype: string // F32 | F16 | BF16 | mixed
  sizeOnDiskBytes: number
  files: number
}

// ---- errors: see errors.ts -------------------------------------------------------------

export { ApiError, type ApiErrorBody, type ApiErrorCode } from './errors.ts'

// ---- methods -----------------------------------------------------------------------------

const absolutePath = z
  .string()
  .min(1, 'a path is required')
  .max(4096, 'path too long')
  .refine((p) => !p.includes('\0'), 'path contains a NUL byte')

// A method is its argument schema plus a phantom result type.
interface MethodSpec<A extends z.ZodType, R> {
  args: A
  result?: R
}
function method<R>() {
  return <A extends z.ZodType>(args: A): MethodSpec<A, R> => ({ args })
}

const none = z.object({}).strict()

export const methods = {
  'app.info': method<AppInfo>()(none),
  'system.info': method<SystemInfo>()(none),
  'system.gpus': method<GpuInfo[]>()(none),
  'settings.get': method<Settings>()(none),
  'settings.update': method<Settings>()(
    z
      .object({
        dataDir: absolutePath.optional(),
        theme: z.enum(['system', 'dark', 'light']).optional(),
        backend: z.enum(['auto', 'cpu', 'cuda']).optional(),
      })
      .strict(),
  ),
  'fs.places': method<FsPlaces>()(none),
  'fs.list': method<FsListing>()(
    z.object({ path: absolutePath, showHidden: z.boolean().default(false) }).strict(),
  ),
  // Native dialog (Electron only). Web mode answers { path: null, native: false } and the
  // renderer shows its own browser built on fs.list.
  'dialog.pick': method<{ path: string | null; native: boolean }>()(
    z
      .object({
        kind: z.enum(['file', 'folder']),
        title: z.string().max(200).optional(),
        defaultPath: absolutePath.optional(),
      })
      .strict(),
  ),
  'models.inspect': method<ModelInfo>()(z.object({ path: absolutePath }).strict()),
  // ---- datasets: import runs in the background; progress and the end come as 'datasets.progress' ----
  'datasets.preview': method<DatasetPreview>()(datasetMethodArgs.preview),
  'datasets.import': method<{ jobId: string }>()(datasetMethodArgs.import),
  'datasets.cancel': method<{ cancelled: boolean }>()(datasetMethodArgs.cancel),
  'datasets.list': method<DatasetSummary[]>()(datasetMethodArgs.list),
  'datasets.get': method<DatasetSummary>()(datasetMethodArgs.get),
  // ---- end datasets ----
  // ---- staged runs: progress comes as 'runs.status' / 'runs.metrics' / 'runs.eval' events ----
  'runs.defaultPlan': method<RunPlan>()(runMethodArgs.defaultPlan),
  'runs.estimate': method<MemoryEstimate>()(runMethodArgs.estimate),
  'runs.fit': method<RunPlan>()(runMethodArgs.fit),
  'runs.measure': method<StageTimeEstimate[]>()(runMethodArgs.measure),
  'runs.create': method<RunSummary>()(runMethodArgs.create),
  'runs.list': method<RunSummary[]>()(runMethodArgs.list),
  'runs.get': method<RunDetail>()(runMethodArgs.get),
  'runs.pause': method<RunSummary>()(runMethodArgs.control),
  'runs.resume': method<RunSummary>()(runMethodArgs.control),
  'runs.stop': method<RunSummary>()(runMethodArgs.control),
  'runs.delete': method<{ deleted: boolean }>()(runMethodArgs.control),
  'runs.demo': method<RunPlan>()(runMethodArgs.demo),
  // ---- end runs ----
  // ---- export: runs in the background; progress and the end come as 'export.progress' ----
  'export.start': method<{ jobId: string }>()(exportMethodArgs.start),
  'export.cancel': method<{ cancelled: boolean }>()(exportMethodArgs.cancel),
  'export.jobs': method<ExportJob[]>()(exportMethodArgs.jobs),
  // ---- chat: answers stream as 'chat.token' events; session changes (crash, unload) as 'chat.session' ----
  'chat.load': method<ChatSessionInfo>()(chatMethodArgs.load),
  'chat.send': method<ChatSendResult>()(chatMethodArgs.send),
  'chat.stop': method<{ stopped: boolean }>()(chatMethodArgs.stop),
  'chat.unload': method<{ unloaded: boolean }>()(chatMethodArgs.unload),
  'chat.restart': method<ChatSessionInfo>()(chatMethodArgs.restart),
  'chat.sessions': method<ChatSessionInfo[]>()(chatMethodArgs.sessions),
  'chat.countTokens': method<{ tokens: number }>()(chatMethodArgs.countTokens),
  'chat.readDocument': method<ChatDocument>()(chatMethodArgs.readDocument),
  // ---- end export and chat ----
} as const

export type Methods = typeof methods
export type MethodName = keyof Methods
export type ArgsOf<M extends MethodName> = z.input<Methods[M]['args']>
export type ParsedArgsOf<M extends MethodName> = z.output<Methods[M]['args']>
export type ResultOf<M extends MethodName> = NonNullable<Methods[M]['result']>
export const methodNames: readonly MethodName[] = METHOD_NAMES

// Compile-time proof that names.ts lists exactly the methods and events declared here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const methodNamesInSync: Same<(typeof METHOD_NAMES)[number], keyof typeof methods> = true
const eventNamesInSync: Same<(typeof EVENT_NAMES)[number], keyof ApiEvents> = true
void methodNamesInSync
void eventNamesInSync

export function isMethodName(name: unknown): name is MethodName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(methods, name)
}

// ---- server-pushed events ----------------------------------------------------------------

export interface ApiEvents {
  // live device figures, about once a second while anyone listens
  'system.gpus': GpuInfo[]
  'settings.changed': Settings
  // import progress, about 5 times a second, and once with done: true at the end
  'datasets.progress': DatasetImportProgress
  // staged runs: status changes, new metric points (batched), evaluations
  'runs.status': RunEvents['runs.status']
  'runs.metrics': RunEvents['runs.metrics']
  'runs.eval': RunEvents['runs.eval']
  // export progress, about 5 times a second, and once with done: true at the end
  'export.progress': ExportProgress
  // chat: answer text as it streams (about 20 a second), the last one with done: true
  'chat.token': ChatTokenEvent
  // chat: a session crashed (GGUF process died), was restarted or unloaded
  'chat.session': ChatSessionInfo
}
export type EventName = keyof ApiEvents

// ---- the client surface both transports give the renderer --------------------------------

export interface ApiClient {
  call<M extends MethodName>(name: M, args: ArgsOf<M>): Promise<ResultOf<M>>
  on<E extends EventName>(event: E, listener: (payload: ApiEvents[E]) => void): () => void
  readonly mode: 'electron' | 'web'
}
