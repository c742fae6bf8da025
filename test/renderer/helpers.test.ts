import { describe, expect, it } from 'vitest'
import { attentionKind, countAttention, describeAttention, windowSize } from '@/attention'
import { gpuAbsenceReason, gpuMemoryLine, shortGpuName } from '@/gpu'
import { baseName, isWindowsPath, pathCrumbs } from '@/paths'
import { resolveTheme } from '@/theme'
import { gpu } from './fake-api'

describe('pathCrumbs', () => {
  it('splits POSIX paths from the root', () => {
    expect(pathCrumbs('/home/ann/models')).toEqual([
      { label: '/', path: '/' },
      { label: 'home', path: '/home' },
      { label: 'ann', path: '/home/ann' },
      { label: 'models', path: '/home/ann/models' },
    ])
    expect(pathCrumbs('/')).toEqual([{ label: '/', path: '/' }])
    expect(pathCrumbs('/tmp/')).toEqual([
      { label: '/', path: '/' },
      { label: 'tmp', path: '/tmp' },
    ])
  })

  it('keeps Windows drive roots and separators', () => {
    expect(pathCrumbs('C:\\Users\\Ann')).toEqual([
      { label: 'C:\\', path: 'C:\\' },
      { label: 'Users', path: 'C:\\Users' },
      { label: 'Ann', path: 'C:\\Users\\Ann' },
    ])
    expect(pathCrumbs('D:\\')).toEqual([{ label: 'D:\\', path: 'D:\\' }])
  })

  it('treats a UNC share as one root', () => {
    expect(pathCrumbs('\\\\nas\\share\\models')).toEqual([
      { label: '\\\\nas\\share\\', path: '\\\\nas\\share\\' },
      { label: 'models', path: '\\\\nas\\share\\models' },
    ])
  })

  it('reads the style from the path, not the platform', () => {
    expect(isWindowsPath('C:/Users')).toBe(true)
    expect(isWindowsPath('/c/Users')).toBe(false)
    expect(pathCrumbs('')).toEqual([])
  })

  it('finds base names in either style', () => {
    expect(baseName('/models/gpt2-medium/')).toBe('gpt2-medium')
    expect(baseName('C:\\models\\rugpt3xl')).toBe('rugpt3xl')
    expect(baseName('/')).toBe('/')
  })
})

describe('attention helpers', () => {
  it('classifies patterns and reads window sizes', () => {
    expect(attentionKind('dense')).toBe('dense')
    expect(attentionKind('sparse')).toBe('sparse')
    expect(attentionKind('window:256')).toBe('window')
    expect(windowSize('window:256')).toBe(256)
    expect(windowSize('dense')).toBeNull()
    expect(describeAttention('window:128')).toBe('sliding window of 128 tokens')
    expect(describeAttention('sparse')).toBe('block-sparse')
  })

  it('counts layers per kind in a fixed order', () => {
    // ruGPT3XL: even layers block-sparse, odd layers dense
    const xl = Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? 'sparse' : 'dense') as 'sparse' | 'dense')
    expect(countAttention(xl)).toEqual([
      { kind: 'dense', layers: 12 },
      { kind: 'sparse', layers: 12 },
    ])
    expect(countAttention(['window:64', 'dense', 'window:64'])).toEqual([
      { kind: 'dense', layers: 1 },
      { kind: 'window', layers: 2 },
    ])
    expect(countAttention([])).toEqual([])
  })
})

describe('gpu wording', () => {
  it('extracts why no GPU was found', () => {
    expect(gpuAbsenceReason('no NVIDIA GPU found (libnvidia-ml.so.1: cannot open shared object file)')).toBe(
      'libnvidia-ml.so.1: cannot open shared object file',
    )
    expect(gpuAbsenceReason('no NVIDIA GPU found: driver not loaded')).toBe('driver not loaded')
    expect(gpuAbsenceReason('no NVIDIA GPU found')).toBeNull()
    expect(gpuAbsenceReason('NVML failed to initialise')).toBe('NVML failed to initialise')
    expect(gpuAbsenceReason('')).toBeNull()
  })

  it('writes the footer line and short names', () => {
    expect(gpuMemoryLine({ ...gpu, usedBytes: 3.2 * 1024 ** 3 })).toBe('GPU 0 · 3.2 / 24.0 GiB')
    expect(shortGpuName('NVIDIA GeForce RTX 4090')).toBe('RTX 4090')
    expect(shortGpuName('NVIDIA H100 80GB HBM3')).toBe('H100 80GB HBM3')
  })
})

describe('resolveTheme', () => {
  it('follows the OS only for "system"', () => {
    expect(resolveTheme('system', true)).toBe('dark')
    expect(resolveTheme('system', false)).toBe('light')
    expect(resolveTheme('dark', false)).toBe('dark')
    expect(resolveTheme('light', true)).toBe('light')
  })
})
