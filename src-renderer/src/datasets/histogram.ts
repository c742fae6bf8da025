// Dataset statistics shaped for the Dataset step: bars of the length histogram and the
// "at least 2k / 4k / 8k / 16k" table, with which lengths the data can teach.
import type { DatasetStats, LengthBucket } from '@contract'

export interface HistogramBar {
  label: string
  minTokens: number
  value: number
  /** of the tallest bar, 0..1: the bar's height */
  height: number
  /** of all documents (or tokens), 0..1 */
  share: number
  /** the bucket reaches at least this context (its documents can give windows of it) */
  long: boolean
}

export function histogramBars(buckets: LengthBucket[], by: 'documents' | 'tokens', longFrom: number | null = null): HistogramBar[] {
  const values = buckets.map((b) => (by === 'documents' ? b.documents : b.tokens))
  const max = Math.max(0, ...values)
  const total = values.reduce((a, v) => a + v, 0)
  return buckets.map((b, i) => ({
    label: b.label,
    minTokens: b.minTokens,
    value: values[i],
    // a non-empty bucket stays visible next to a huge one
    height: max > 0 ? (values[i] > 0 ? Math.max(0.02, values[i] / max) : 0) : 0,
    share: total > 0 ? values[i] / total : 0,
    long: longFrom !== null && b.minTokens >= longFrom,
  }))
}

export interface AtLeastRow {
  context: number
  documents: number
  tokens: number
  /** share of the training tokens in documents at least this long */
  tokenShare: number
}

export function atLeastRows(stats: DatasetStats): AtLeastRow[] {
  return Object.entries(stats.atLeast)
    .map(([k, v]) => ({
      context: Number(k),
      documents: v.documents,
      tokens: v.tokens,
      tokenShare: stats.tokens > 0 ? v.tokens / stats.tokens : 0,
    }))
    .filter((r) => Number.isFinite(r.context))
    .sort((a, b) => a.context - b.context)
}
