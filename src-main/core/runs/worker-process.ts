// Starting the training worker (src-main/worker/index.ts) as a child process and talking to it.
//
// From source (tests, the CLI through tsx) the worker is the .ts entry run with tsx's loader;
// from the bundle (electron-vite) it is out/main/worker.js beside the main bundle. Under
// Electron, ELECTRON_RUN_AS_NODE makes the Electron binary a plain Node for the child (same
// ABI, so the same addon loads). The worker's stdout and stderr go to the run's worker.log, so
// a native crash's last words are kept.
import { fork, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { isFromWorker, type FromWorker, type ToWorker, type WorkerJob } from '../../worker/protocol.ts'

export class WorkerStartError extends Error {
  override name = 'WorkerStartError'
}

function workerEntry(): { script: string; execArgv: string[] } {
  const here = import.meta.url
  if (here.endsWith('.ts')) {
    const require = createRequire(here)
    // tsx's loader by absolute URL: `--import tsx` would resolve from the user's cwd.
    const loader = pathToFileURL(join(dirname(require.resolve('tsx/package.json')), 'dist/loader.mjs')).href
    return { script: fileURLToPath(new URL('../../worker/index.ts', here)), execArgv: ['--import', loader] }
  }
  const dir = dirname(fileURLToPath(here))
  for (const candidate of [join(dir, 'worker.js'), join(dir, '..', 'worker.js')]) {
    if (existsSync(candidate)) return { script: candidate, execArgv: [] }
  }
  throw new WorkerStartError(`the training worker (worker.js) is missing next to ${dir}; rebuild the app`)
}

export interface WorkerExit {
  code: number | null
  signal: NodeJS.Signals | null
  finished: Extract<FromWorker, { type: 'finished' }> | null
}

export class WorkerProcess {
  readonly pid: number
  readonly exited: Promise<WorkerExit>
  private finished: WorkerExit['finished'] = null

  private constructor(
    private readonly child: ChildProcess,
    onMessage: (m: FromWorker) => void,
  ) {
    this.pid = child.pid ?? -1
    child.on('message', (m: unknown) => {
      if (!isFromWorker(m)) return
      if (m.type === 'finished') this.finished = m
      onMessage(m)
    })
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal, finished: this.finished }))
    })
  }

  // Starts a worker on `job`. logFile: where its stdout/stderr go (appended), or null to inherit.
  static start(job: WorkerJob, opts: { logFile: string | null; env?: NodeJS.ProcessEnv; onMessage: (m: FromWorker) => void }): WorkerProcess {
    const entry = workerEntry()
    const fd = opts.logFile ? openSync(opts.logFile, 'a') : null
    try {
      const child = fork(entry.script, [], {
        execArgv: entry.execArgv,
        env: { ...(opts.env ?? process.env), ELECTRON_RUN_AS_NODE: '1' },
        stdio: fd === null ? ['ignore', 'inherit', 'inherit', 'ipc'] : ['ignore', fd, fd, 'ipc'],
        serialization: 'advanced',
      })
      const w = new WorkerProcess(child, opts.onMessage)
      child.on('error', () => undefined) // a failed send after exit; the exit handler reports
      w.send({ type: 'start', job })
      return w
    } finally {
      // The child holds its own copy of the descriptor.
      if (fd !== null) closeSync(fd)
    }
  }

  send(msg: ToWorker): void {
    if (this.child.connected) this.child.send(msg)
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
  }
}

// True when a process with this pid exists (signal 0 checks without sending anything).
export function processAlive(pid: number | null | undefined): boolean {
  if (!pid || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

// True when `pid` is alive and (where the OS says) still a training worker: a pid recorded in
// state.json before a reboot or a crash may belong to an unrelated process by now.
export function workerAlive(pid: number | null | undefined): boolean {
  if (!processAlive(pid)) return false
  if (process.platform !== 'linux') return true
  try {
    return /worker/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))
  } catch {
    return true
  }
}
