// The core: plain TypeScript services behind the API contract. No Electron import here, so the
// same core runs in Electron, in web mode, in the CLI and in tests. Every call is validated
// against the contract's schema before a handler sees it.
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import {
  ApiError,
  isMethodName,
  methods,
  type ApiEvents,
  type EventName,
  type MethodName,
  type ParsedArgsOf,
  type ResultOf,
} from '../api/contract.ts'
import { EventHub } from './events.ts'
import { listFolder, places } from './file-browser.ts'
import { SettingsService } from './settings.ts'
import { readSystemInfo, type NativeProbe } from './system-info.ts'
import { inspectModelFolder } from './models.ts'
import { DatasetService } from './datasets/service.ts' // datasets
import { dataLayout } from './paths.ts' // datasets
import { RunService } from './runs/service.ts' // runs
import { registerRunExportResolver } from './runs/export-source.ts' // runs
import { ExportService } from './export/service.ts' // export
import { ChatService } from './chat/service.ts' // chat

export interface CoreOptions {
  mode: 'electron' | 'web'
  env?: NodeJS.ProcessEnv
  native: NativeProbe
  // Electron supplies the native dialog; web mode has none and the renderer browses via fs.list.
  pickPath?: (args: ParsedArgsOf<'dialog.pick'>) => Promise<string | null>
  gpuPollMs?: number
}

type Handlers = { [M in MethodName]: (args: ParsedArgsOf<M>) => Promise<ResultOf<M>> | ResultOf<M> }

export interface Core {
  call(name: string, rawArgs: unknown): Promise<unknown>
  on<E extends EventName>(event: E, listener: (payload: ApiEvents[E]) => void): () => void
  onAny(listener: (event: EventName, payload: unknown) => void): () => void
  dispose(): Promise<void>
}

export async function createCore(opts: CoreOptions): Promise<Core> {
  const env = opts.env ?? process.env
  const settings = await SettingsService.open(env)
  const hub = new EventHub()
  const version = await readVersion()
  // ---- datasets ----
  const datasets = new DatasetService({
    datasetsDir: () => dataLayout(settings.get().dataDir).datasets,
    emit: (progress) => hub.emit('datasets.progress', progress),
  })
  // ---- end datasets ----
  // ---- runs ----
  const runs = await RunService.open({
    runsDir: () => dataLayout(settings.get().dataDir).runs,
    datasetsDir: () => dataLayout(settings.get().dataDir).datasets,
    probe: opts.native,
    emit: (event, payload) => hub.emit(event, payload as ApiEvents[typeof event]), // RunEvents is a subset of ApiEvents
  })
  // Run ids resolve to their model (final/ or latest checkpoint) wherever a path-or-id is
  // resolved (resolveExportSource); the registry is process-wide, so dispose() unregisters.
  const unregisterRunSources = registerRunExportResolver(() => dataLayout(settings.get().dataDir).runs)
  // ---- end runs ----
  // ---- export and chat ----
  const exports = new ExportService({ emit: (progress) => hub.emit('export.progress', progress) })
  const chat = new ChatService({
    emitToken: (e) => hub.emit('chat.token', e),
    emitSession: (info) => hub.emit('chat.session', info),
    backend: () => settings.get().backend,
  })
  // ---- end export and chat ----

  const handlers: Handlers = {
    'app.info': () => ({ version, mode: opts.mode, platform: process.platform }),
    'system.info': () => readSystemInfo(settings.get().dataDir, opts.native),
    'system.gpus': () => opts.native.readGpus().gpus,
    'settings.get': () => settings.get(),
    'settings.update': async (patch) => {
      const next = await settings.update(patch)
      hub.emit('settings.changed', next)
      return next
    },
    'fs.places': () => places(settings.get().dataDir),
    'fs.list': (args) => listFolder(args.path, args.showHidden),
    'dialog.pick': async (args) =>
      opts.pickPath ? { path: await opts.pickPath(args), native: true } : { path: null, native: false },
    'models.inspect': (args) => inspectModelFolder(args.path),
    // ---- datasets ----
    'datasets.preview': (args) => datasets.preview(args),
    'datasets.import': (args) => datasets.startImport(args),
    'datasets.cancel': (args) => datasets.cancel(args.jobId),
    'datasets.list': () => datasets.list(),
    'datasets.get': (args) => datasets.get(args.id, args.targetContext),
    // ---- end datasets ----
    // ---- runs ----
    // A new plan follows the backend chosen in Settings (auto | cpu | cuda).
    'runs.defaultPlan': async (args) => ({ ...(await runs.defaultPlan(args)), backend: settings.get().backend }),
    'runs.estimate': (args) => runs.estimate(args.plan),
    'runs.fit': (args) => runs.fit(args.plan),
    'runs.measure': (args) => runs.measure(args.plan, args.steps),
    'runs.create': (args) => runs.create(args.plan, args.start),
    'runs.list': () => runs.list(),
    'runs.get': (args) => runs.get(args.runId, args.maxPoints),
    'runs.pause': (args) => runs.pause(args.runId),
    'runs.resume': (args) => runs.resume(args.runId),
    'runs.stop': (args) => runs.stop(args.runId),
    'runs.delete': (args) => runs.delete(args.runId),
    'runs.demo': async () => ({ ...(await runs.demo()), backend: settings.get().backend }),
    // ---- end runs ----
    // ---- export and chat ----
    'export.start': (args) => exports.start(args),
    'export.cancel': (args) => exports.cancel(args.jobId),
    'export.jobs': () => exports.list(),
    'chat.load': (args) => chat.load(args),
    'chat.send': (args) => chat.send(args),
    'chat.stop': (args) => chat.stop(args.sessionId),
    'chat.unload': (args) => chat.unload(args.sessionId),
    'chat.restart': (args) => chat.restart(args.sessionId),
    'chat.sessions': () => chat.list(),
    'chat.countTokens': (args) => chat.countTokens(args.sessionId, args.text),
    'chat.readDocument': (args) => chat.readDocument(args.path),
    // ---- end export and chat ----
  }

  // Live GPU figures only while someone listens: NVML reads are cheap but not free.
  let gpuTimer: NodeJS.Timeout | null = null
  hub.onListenersChanged = () => {
    const wanted = hub.hasListeners('system.gpus')
    if (wanted && !gpuTimer) {
      gpuTimer = setInterval(() => hub.emit('system.gpus', opts.native.readGpus().gpus), opts.gpuPollMs ?? 1000)
      gpuTimer.unref()
    } else if (!wanted && gpuTimer) {
      clearInterval(gpuTimer)
      gpuTimer = null
    }
  }

  return {
    async call(name, rawArgs) {
      if (!isMethodName(name)) throw new ApiError('unknown_method', `There is no API method "${String(name)}".`)
      const parsed = methods[name].args.safeParse(rawArgs ?? {})
      if (!parsed.success) {
        const details = parsed.error.issues
          .map((i) => `${i.path.length ? i.path.join('.') : '(arguments)'}: ${i.message}`)
          .join('; ')
        throw new ApiError('invalid_argument', `Invalid arguments for ${name}.`, details)
      }
      try {
        const handler = handlers[name] as (args: unknown) => unknown
        return await handler(parsed.data)
      } catch (err) {
        throw toApiError(err)
      }
    },
    on: (event, listener) => hub.on(event, listener),
    onAny: (listener) => hub.onAny(listener),
    async dispose() {
      await datasets.dispose() // datasets: stop running imports, removing their folders
      await runs.dispose() // runs: running workers pause (checkpoint, exit)
      unregisterRunSources()
      await chat.dispose() // chat: free the models, end the GGUF processes
      await exports.dispose() // export: cancel running exports (their partial files are removed)
      if (gpuTimer) clearInterval(gpuTimer)
      gpuTimer = null
    },
  }
}

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new ApiError('internal', `Unexpected error: ${message}`)
}

async function readVersion(): Promise<string> {
  // The app's package.json is an ancestor of this module both in the source tree and in the
  // bundled out/ folder (where chunk depth varies), so walk up until it is found.
  let dir = import.meta.dirname
  for (;;) {
    try {
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'))
      if (pkg.name === 'longctx-studio') return pkg.version
    } catch {
      // not here: keep walking
    }
    const parent = dirname(dir)
    if (parent === dir) return '0.0.0'
    dir = parent
  }
}
