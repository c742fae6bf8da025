// OS, CPU, RAM, disk and GPUs. GPU figures come from NVML through the native addon (dlopen of
// libnvidia-ml at call time), so a machine without an NVIDIA driver simply reports none.
import { statfs } from 'node:fs/promises'
import os from 'node:os'
import type { GpuInfo, SystemInfo } from '../api/contract.ts'

export interface GpuReading {
  gpus: GpuInfo[]
  status: string
}

export interface NativeProbe {
  backends: Array<'cpu' | 'cuda'>
  error: string | null
  readGpus(): GpuReading
}

export async function readSystemInfo(dataDir: string, probe: NativeProbe): Promise<SystemInfo> {
  const cpus = os.cpus()
  let free = 0
  let total = 0
  try {
    const fsStat = await statfs(dataDir)
    free = fsStat.bavail * fsStat.bsize
    total = fsStat.blocks * fsStat.bsize
  } catch {
    // the folder may be on a detached drive; report zero rather than fail the whole panel
  }
  const gpu = probe.readGpus()
  return {
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    hostname: os.hostname(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown CPU',
    cpuCores: os.availableParallelism?.() ?? cpus.length,
    totalRamBytes: os.totalmem(),
    freeRamBytes: os.freemem(),
    dataDir,
    dataDirFreeBytes: free,
    dataDirTotalBytes: total,
    gpus: gpu.gpus,
    gpuStatus: gpu.status,
    backends: probe.backends,
    engineError: probe.error,
  }
}
