// The system panel's view of the native side: which backends the engine was built with, and
// live GPU figures from NVML (read by the addon through dlopen, so no driver means no GPUs,
// never a failure).
import type { GpuInfo } from '../api/contract.ts'
import { tryLoadNative } from '../engine/native.ts'
import type { GpuReading, NativeProbe } from './system-info.ts'

export function createNativeProbe(): NativeProbe {
  const { addon, error } = tryLoadNative()
  return {
    backends: addon ? addon.backendsAvailable() : [],
    error,
    readGpus(): GpuReading {
      if (!addon) return { gpus: [], status: `no NVIDIA GPU found (the native engine did not load: ${error})` }
      const reading = addon.nvmlQuery()
      if (!reading.ok) return { gpus: [], status: `no NVIDIA GPU found (${reading.reason})` }
      const gpus: GpuInfo[] = reading.gpus.map((g) => ({ ...g, driver: reading.driver }))
      if (gpus.length === 0) return { gpus, status: 'no NVIDIA GPU found (the driver reports none)' }
      return { gpus, status: `${gpus.length} NVIDIA GPU${gpus.length > 1 ? 's' : ''}, driver ${reading.driver}` }
    },
  }
}
