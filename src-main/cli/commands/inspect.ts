// `longctx inspect MODEL_DIR [--json]`: what the wizard's model step shows.
import type { Command } from 'commander'
import type { AttentionPattern, ModelInfo } from '../../api/contract.ts'
import { inspectModel } from '../../engine/inspect.ts'
import { formatBytes, formatCount, type CliIO } from '../common.ts'

// "dense x12" or "sparse, dense x12 (alternating)" rather than one word per layer.
export function summarizeAttention(att: AttentionPattern[]): string {
  const runs: Array<{ p: AttentionPattern; n: number }> = []
  for (const p of att) {
    const last = runs[runs.length - 1]
    if (last && last.p === p) last.n++
    else runs.push({ p, n: 1 })
  }
  if (runs.length <= 3) return runs.map((r) => (r.n > 1 ? `${r.p} x${r.n}` : r.p)).join(', ')
  // Alternating patterns (ruGPT3XL: sparse on even layers) read better as a period.
  if (att.length % 2 === 0 && att.every((p, i) => p === att[i % 2])) return `${att[0]}, ${att[1]} alternating (x${att.length / 2})`
  return att.join(' ')
}

export function formatModelInfo(m: ModelInfo): string {
  const rows: Array<[string, string]> = [
    ['folder', m.path],
    ['architecture', `${m.architecture} (${m.family})`],
    ['parameters', `${formatCount(m.parameters)} (${m.parameters.toLocaleString('en-US')})`],
    ['layers', String(m.layers)],
    ['heads', String(m.heads)],
    ['width', String(m.width)],
    ['context', `${m.contextLength} tokens`],
    ['vocabulary', String(m.vocabSize)],
    ['attention', summarizeAttention(m.attention)],
  ]
  if (m.sparse)
    rows.push([
      'sparse layout',
      `block ${m.sparse.block}, ${m.sparse.numLocalBlocks} local / ${m.sparse.numGlobalBlocks} global blocks, ` +
        `${m.sparse.differentLayoutPerHead ? 'per-head layouts' : 'one layout for all heads'}, ` +
        `${m.sparse.numDifferentGlobalPatterns} global pattern(s)`,
    ])
  rows.push(
    ['tokenizer', m.tokenizer ? `${m.tokenizer.kind}` : 'none found (tokenizer.json or vocab.json + merges.txt)'],
    ['dtype', m.dtype],
    ['size on disk', `${formatBytes(m.sizeOnDiskBytes)} in ${m.files} file${m.files === 1 ? '' : 's'}`],
  )
  const w = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n') + '\n'
}

export function registerInspect(program: Command, io: CliIO): Command {
  return program
    .command('inspect')
    .description('show what a model folder holds (architecture, size, context, attention, tokenizer)')
    .argument('<MODEL_DIR>', 'Hugging Face model folder (config.json + safetensors)')
    .option('--json', 'print JSON')
    .action(async (dir: string, opts: { json?: boolean }) => {
      const info = await inspectModel(dir)
      io.out(opts.json ? JSON.stringify(info, null, 2) + '\n' : formatModelInfo(info))
    })
}
