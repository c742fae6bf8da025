// Human-readable numbers for the UI. Output is deliberately locale-independent (en-US style
// grouping, binary units) so that screenshots, tests and bug reports read the same everywhere.

const DASH = '—'

function finite(n: number | null | undefined): n is number {
  return typeof n === 'number' && Number.isFinite(n)
}

/** "1,234,567" — thousands grouping without depending on the user's locale. */
export function formatCount(n: number | null | undefined): string {
  if (!finite(n)) return DASH
  const sign = n < 0 ? '-' : ''
  const [int, frac] = Math.abs(n).toString().split('.')
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  return sign + grouped + (frac ? '.' + frac : '')
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const

function byteUnitIndex(bytes: number): number {
  let i = 0
  while (i < BYTE_UNITS.length - 1 && Math.abs(bytes) >= 1024 ** (i + 1)) i++
  return i
}

function scaled(value: number, decimals: number): string {
  return value.toFixed(decimals)
}

/**
 * Binary units, three significant figures at most: "512 B", "1.5 KiB", "23.4 GiB", "931 GiB".
 * GPU memory and disk sizes are powers of two in practice, so GiB reads truer than GB.
 */
export function formatBytes(bytes: number | null | undefined): string {
  if (!finite(bytes) || bytes < 0) return DASH
  let i = byteUnitIndex(bytes)
  let v = bytes / 1024 ** i
  // 1023.96 MiB would print as "1024 MiB": promote to the next unit instead.
  if (i > 0 && v >= 100 && Math.round(v) >= 1024 && i < BYTE_UNITS.length - 1) {
    i++
    v = bytes / 1024 ** i
  }
  if (i === 0) return `${Math.round(v)} B`
  return `${scaled(v, v < 100 ? 1 : 0)} ${BYTE_UNITS[i]}`
}

/**
 * "3.2 / 24.0 GiB": both figures in the unit of the total, so a memory bar's label does not
 * jump between MiB and GiB as usage grows.
 */
export function formatBytesOf(used: number | null | undefined, total: number | null | undefined): string {
  if (!finite(used) || !finite(total) || total <= 0 || used < 0) return DASH
  const i = Math.max(1, byteUnitIndex(total))
  const unit = BYTE_UNITS[i]
  const t = total / 1024 ** i
  const u = used / 1024 ** i
  const decimals = t < 100 ? 1 : 0
  return `${scaled(u, decimals)} / ${scaled(t, decimals)} ${unit}`
}

const PARAM_UNITS = ['', 'K', 'M', 'B', 'T'] as const

/**
 * Model sizes the way people name them: 124M, 355M, 1.3B, 7.2M, 850.
 * One decimal below 10 of a unit, none above.
 */
export function formatParams(n: number | null | undefined): string {
  if (!finite(n) || n < 0) return DASH
  if (n < 1000) return String(Math.round(n))
  let i = 0
  let v = n
  while (v >= 1000 && i < PARAM_UNITS.length - 1) {
    v /= 1000
    i++
  }
  let text = v < 10 ? v.toFixed(1) : Math.round(v).toString()
  // 999.7M rounds to "1000M": say 1B instead.
  if (Number(text) >= 1000 && i < PARAM_UNITS.length - 1) {
    v /= 1000
    i++
    text = v.toFixed(1)
  }
  if (text.endsWith('.0')) text = text.slice(0, -2)
  return text + PARAM_UNITS[i]
}

/** "850 ms", "4.2 s", "42 s", "3 min 12 s", "2 h 5 min", "1 d 3 h". */
export function formatDuration(ms: number | null | undefined): string {
  if (!finite(ms) || ms < 0) return DASH
  if (ms < 1000) return `${Math.round(ms)} ms`
  const totalS = ms / 1000
  if (totalS < 10) return `${totalS.toFixed(1)} s`
  const s = Math.round(totalS)
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`
  const h = Math.floor(m / 60)
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`
  const d = Math.floor(h / 24)
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`
}

/** 0..100 → "37%"; null (the driver did not report it) → "—". */
export function formatPercent(pct: number | null | undefined): string {
  if (!finite(pct)) return DASH
  return `${Math.round(pct)}%`
}

export function formatTemperature(celsius: number | null | undefined): string {
  return finite(celsius) ? `${Math.round(celsius)} °C` : DASH
}

export function formatWatts(watts: number | null | undefined): string {
  return finite(watts) ? `${Math.round(watts)} W` : DASH
}

function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n)
}

/** Local time, "2025-11-22 15:19": sortable and unambiguous across locales. */
export function formatDateTime(ms: number | null | undefined): string {
  if (!finite(ms) || ms <= 0) return DASH
  const d = new Date(ms)
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`
}

/** used/total as 0..1, clamped, 0 when the total is unknown. */
export function fraction(used: number | null | undefined, total: number | null | undefined): number {
  if (!finite(used) || !finite(total) || total <= 0) return 0
  return Math.min(1, Math.max(0, used / total))
}

/**
 * Context lengths the way people say them: 256, 512, "1k", "2k", "1.5k", "8k", "16k".
 * Powers of two above 1024 read as k of 1024 tokens (2048 is "2k", as in "a 2k model").
 */
export function formatContext(tokens: number | null | undefined): string {
  if (!finite(tokens) || tokens < 0) return DASH
  if (tokens < 1024) return String(Math.round(tokens))
  const k = tokens / 1024
  return Number.isInteger(k) ? `${k}k` : `${Number(k.toFixed(1))}k`
}

/** Perplexity with two decimals ("11.68"); large values (an untrained length) lose decimals. */
export function formatPpl(ppl: number | null | undefined): string {
  if (!finite(ppl) || ppl <= 0) return DASH
  if (ppl >= 1000) return formatCount(Math.round(ppl))
  if (ppl >= 100) return ppl.toFixed(1)
  return ppl.toFixed(2)
}

/** A signed change: "+0.8%", "-3.1%", "±0.0%". */
export function formatSignedPercent(pct: number | null | undefined, decimals = 1): string {
  if (!finite(pct)) return DASH
  const text = Math.abs(pct).toFixed(decimals)
  if (Number(text) === 0) return `±${text}%`
  return `${pct > 0 ? '+' : '-'}${text}%`
}

/** Compact counts for charts and stats: 12.25, 950, "12.3K", "4.5M", "1.2B". */
export function formatCompact(n: number | null | undefined): string {
  if (!finite(n)) return DASH
  const a = Math.abs(n)
  if (a < 100) return String(Math.round(n * 100) / 100) // 0.5, 12.25
  if (a < 1000) return String(Math.round(n)) // 809, not 808.62
  return (n < 0 ? '-' : '') + formatParams(a)
}

/** Learning rates: "3e-4", "1.5e-5", "0". */
export function formatLr(lr: number | null | undefined): string {
  if (!finite(lr)) return DASH
  if (lr === 0) return '0'
  const [m, e] = lr.toExponential(2).split('e')
  return `${Number(m)}e${Number(e)}`
}
