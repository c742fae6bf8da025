// Fault injection for the tests of the error paths that cannot be produced on demand with a
// tiny model on the CPU (a real out-of-memory, a full disk, a diverging run), and a per-step
// delay so a test can kill the worker mid-run. Read from LONGCTX_WORKER_FAULTS, e.g.
// "nan@3,delay=40": comma-separated
//   nan@STEP      poison the weights before global step STEP (the loss becomes NaN)
//   oom@STEP      fail global step STEP with the engine's out-of-memory error
//   enospc@STEP   fail the checkpoint written at global step STEP as a full disk does
//   delay=MS      sleep MS milliseconds after every step
// Never set outside tests; an unknown entry is ignored.
export interface Faults {
  nanAt: number | null
  oomAt: number | null
  enospcAt: number | null
  delayMs: number
}

export function readFaults(env: NodeJS.ProcessEnv = process.env): Faults {
  const f: Faults = { nanAt: null, oomAt: null, enospcAt: null, delayMs: 0 }
  for (const part of (env.LONGCTX_WORKER_FAULTS ?? '').split(',')) {
    const at = /^(nan|oom|enospc)@(\d+)$/.exec(part.trim())
    if (at) {
      const step = Number(at[2])
      if (at[1] === 'nan') f.nanAt = step
      else if (at[1] === 'oom') f.oomAt = step
      else f.enospcAt = step
    }
    const delay = /^delay=(\d+)$/.exec(part.trim())
    if (delay) f.delayMs = Number(delay[1])
  }
  return f
}
