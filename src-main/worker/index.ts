// The training worker: a child process (child_process.fork) that loads the native engine and
// runs one job, a training run or a time measurement, talking to its supervisor through the
// messages of protocol.ts. Native faults (a CUDA error, an abort, out of memory, SIGKILL) end
// this process only; the supervisor marks the run interrupted.
//
// If the supervisor goes away (the app quits or is killed), the IPC channel disconnects and the
// run pauses itself: the current step finishes, a checkpoint is written, the process exits.
import type { FromWorker, ToWorker } from './protocol.ts'
import { runMeasure } from './measure.ts'
import { runTraining, type Control } from './train.ts'

const control: Control = { requested: null }
let connected = typeof process.send === 'function'

function send(msg: FromWorker): Promise<void> {
  if (!connected || !process.send) return Promise.resolve()
  return new Promise((resolve) => {
    try {
      process.send!(msg, undefined, {}, () => resolve())
    } catch {
      connected = false
      resolve()
    }
  })
}

async function main(job: Extract<ToWorker, { type: 'start' }>['job']): Promise<void> {
  if (job.kind === 'train') {
    const end = await runTraining(job, control, { send: (m) => void send(m) })
    await send({ type: 'finished', status: end.status, message: end.message })
  } else {
    try {
      const stages = await runMeasure(job, { send: (m) => void send(m) })
      await send({ type: 'measured', stages })
      await send({ type: 'finished', status: 'completed', message: null })
    } catch (err) {
      await send({ type: 'finished', status: 'failed', message: err instanceof Error ? err.message : String(err) })
    }
  }
}

let started = false
process.on('message', (msg: ToWorker) => {
  if (msg.type === 'start' && !started) {
    started = true
    main(msg.job)
      .catch((err) => {
        console.error('worker: unexpected failure', err)
        process.exitCode = 1
      })
      .finally(() => {
        if (connected) process.disconnect()
        // Native handles are disposed by now; nothing else should keep the process alive, but a
        // stuck handle must not keep a finished worker around.
        setTimeout(() => process.exit(), 2000).unref()
      })
  } else if (msg.type === 'pause' || msg.type === 'stop') {
    // A stop outranks a pause already asked for.
    if (control.requested !== 'stop') control.requested = msg.type
  }
})

process.on('disconnect', () => {
  connected = false
  if (!control.requested) control.requested = 'pause'
  if (!started) process.exit(0)
})

if (!connected) {
  console.error('the training worker must be started by the app (child_process.fork), not directly')
  process.exit(2)
}
