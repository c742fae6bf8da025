import { describe, expect, it } from 'vitest'
import {
  formatBytes,
  formatBytesOf,
  formatCount,
  formatDateTime,
  formatDuration,
  formatParams,
  formatPercent,
  formatTemperature,
  formatWatts,
  fraction,
} from '@/format'

const KiB = 1024
const MiB = 1024 ** 2
const GiB = 1024 ** 3

describe('formatBytes', () => {
  it('uses binary units with at most three significant figures', () => {
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(512 * MiB)).toBe('512 MiB')
    expect(formatBytes(23.4 * GiB)).toBe('23.4 GiB')
    expect(formatBytes(931.5 * GiB)).toBe('932 GiB')
    expect(formatBytes(2 * 1024 * GiB)).toBe('2.0 TiB')
  })

  it('promotes to the next unit instead of printing 1024', () => {
    expect(formatBytes(1023.9 * MiB)).toBe('1.0 GiB')
    expect(formatBytes(1023 * KiB)).toBe('1023 KiB')
  })

  it('says nothing for unknown or negative sizes', () => {
    expect(formatBytes(null)).toBe('—')
    expect(formatBytes(undefined)).toBe('—')
    expect(formatBytes(Number.NaN)).toBe('—')
    expect(formatBytes(-1)).toBe('—')
  })
})

describe('formatBytesOf', () => {
  it('puts used and total in the unit of the total', () => {
    expect(formatBytesOf(3.2 * GiB, 24 * GiB)).toBe('3.2 / 24.0 GiB')
    expect(formatBytesOf(300 * MiB, 24 * GiB)).toBe('0.3 / 24.0 GiB')
    expect(formatBytesOf(70 * GiB, 141 * GiB)).toBe('70 / 141 GiB')
  })

  it('never falls back to bytes for tiny totals', () => {
    expect(formatBytesOf(100, 800)).toBe('0.1 / 0.8 KiB')
  })

  it('rejects meaningless pairs', () => {
    expect(formatBytesOf(1, 0)).toBe('—')
    expect(formatBytesOf(null, GiB)).toBe('—')
  })
})

describe('formatParams', () => {
  it('names GPT-2 family sizes the usual way', () => {
    expect(formatParams(124_439_808)).toBe('124M') // GPT-2 small
    expect(formatParams(354_823_168)).toBe('355M') // GPT-2 medium
    expect(formatParams(774_030_080)).toBe('774M') // GPT-2 large
    expect(formatParams(1_557_611_200)).toBe('1.6B') // GPT-2 XL
    expect(formatParams(1_300_000_000)).toBe('1.3B')
  })

  it('handles small and round numbers', () => {
    expect(formatParams(850)).toBe('850')
    expect(formatParams(7_200_000)).toBe('7.2M')
    expect(formatParams(2_000_000)).toBe('2M')
    expect(formatParams(1000)).toBe('1K')
    expect(formatParams(999_700_000)).toBe('1B')
  })

  it('says nothing for unknown counts', () => {
    expect(formatParams(null)).toBe('—')
    expect(formatParams(-5)).toBe('—')
  })
})

describe('formatDuration', () => {
  it('scales from milliseconds to days', () => {
    expect(formatDuration(850)).toBe('850 ms')
    expect(formatDuration(4_200)).toBe('4.2 s')
    expect(formatDuration(42_000)).toBe('42 s')
    expect(formatDuration(192_000)).toBe('3 min 12 s')
    expect(formatDuration(180_000)).toBe('3 min')
    expect(formatDuration(2 * 3600_000 + 5 * 60_000)).toBe('2 h 5 min')
    expect(formatDuration(3600_000)).toBe('1 h')
    expect(formatDuration(27 * 3600_000)).toBe('1 d 3 h')
    expect(formatDuration(48 * 3600_000)).toBe('2 d')
  })

  it('rounds 59.6 s up into minutes rather than printing 60 s', () => {
    expect(formatDuration(59_600)).toBe('1 min')
  })

  it('says nothing for unknown durations', () => {
    expect(formatDuration(null)).toBe('—')
    expect(formatDuration(-1)).toBe('—')
  })
})

describe('small formatters', () => {
  it('groups thousands independent of locale', () => {
    expect(formatCount(50257)).toBe('50,257')
    expect(formatCount(1234567.5)).toBe('1,234,567.5')
    expect(formatCount(-8192)).toBe('-8,192')
    expect(formatCount(999)).toBe('999')
  })

  it('formats driver figures, with a dash when the driver did not report one', () => {
    expect(formatPercent(37.4)).toBe('37%')
    expect(formatPercent(null)).toBe('—')
    expect(formatTemperature(64.6)).toBe('65 °C')
    expect(formatTemperature(null)).toBe('—')
    expect(formatWatts(215.2)).toBe('215 W')
    expect(formatWatts(undefined)).toBe('—')
  })

  it('formats local date and time sortably', () => {
    expect(formatDateTime(new Date(2025, 10, 2, 9, 5).getTime())).toBe('2025-11-02 09:05')
    expect(formatDateTime(0)).toBe('—')
  })

  it('clamps fractions', () => {
    expect(fraction(3, 4)).toBe(0.75)
    expect(fraction(5, 4)).toBe(1)
    expect(fraction(1, 0)).toBe(0)
    expect(fraction(null, 4)).toBe(0)
  })
})
