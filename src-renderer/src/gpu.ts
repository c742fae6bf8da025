// Wording about GPUs shared by the footer, the system panel and the monitor.
import type { GpuInfo } from '@contract'
import { formatBytesOf } from './format'

export const NO_GPU = 'no NVIDIA GPU found'

/**
 * The reason part of a gpuStatus like "no NVIDIA GPU found (libnvidia-ml.so.1 not found)", or
 * the whole status when it is worded differently; null when there is nothing beyond the headline.
 */
export function gpuAbsenceReason(gpuStatus: string | null | undefined): string | null {
  if (!gpuStatus) return null
  const s = gpuStatus.trim()
  if (!s.toLowerCase().startsWith(NO_GPU.toLowerCase())) return s
  const rest = s
    .slice(NO_GPU.length)
    .trim()
    .replace(/^[-–—:,]\s*/, '')
    .replace(/^\((.*)\)$/s, '$1')
    .trim()
  return rest || null
}

/** "GPU 0 · 3.2 / 24.0 GiB" — the compact memory line of the status footer. */
export function gpuMemoryLine(gpu: GpuInfo): string {
  return `GPU ${gpu.index} · ${formatBytesOf(gpu.usedBytes, gpu.totalBytes)}`
}

/** Short model name: "NVIDIA GeForce RTX 4090" → "RTX 4090", for tight spaces. */
export function shortGpuName(name: string): string {
  return name.replace(/^NVIDIA\s+/i, '').replace(/^GeForce\s+/i, '').trim() || name
}
