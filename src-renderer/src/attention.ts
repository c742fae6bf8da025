// Per-layer attention patterns as the model step shows them.
import type { AttentionPattern } from '@contract'

export type AttentionKind = 'dense' | 'sparse' | 'window'

export function attentionKind(p: AttentionPattern): AttentionKind {
  if (p === 'dense' || p === 'sparse') return p
  return 'window'
}

/** Window size of a "window:N" pattern, null for the others. */
export function windowSize(p: AttentionPattern): number | null {
  if (!p.startsWith('window:')) return null
  const n = Number(p.slice('window:'.length))
  return Number.isFinite(n) ? n : null
}

export function describeAttention(p: AttentionPattern): string {
  const w = windowSize(p)
  if (w !== null) return `sliding window of ${w} tokens`
  return p === 'sparse' ? 'block-sparse' : 'dense causal'
}

export interface AttentionCount {
  kind: AttentionKind
  layers: number
}

/** How many layers use each pattern, in a fixed order (dense, sparse, window), zeros left out. */
export function countAttention(patterns: readonly AttentionPattern[]): AttentionCount[] {
  const order: AttentionKind[] = ['dense', 'sparse', 'window']
  const counts = new Map<AttentionKind, number>()
  for (const p of patterns) counts.set(attentionKind(p), (counts.get(attentionKind(p)) ?? 0) + 1)
  return order.filter((k) => counts.has(k)).map((k) => ({ kind: k, layers: counts.get(k)! }))
}
