// The README.md of an exported folder: what the model is, how its context was extended (when the
// run passes its plan) and what that did to perplexity per window (when it passes the table).
import type { ExportCard } from '../../api/contract.ts'
import type { ModelConfig } from '../../engine/model.ts'

function fmtInt(n: number): string {
  return n.toLocaleString('en-US')
}

function fmtCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`
  return String(n)
}

function fmtWindow(n: number): string {
  return n >= 1024 && n % 1024 === 0 ? `${n / 1024}k` : String(n)
}

function attentionSummary(attention: readonly string[]): string {
  const counts = new Map<string, number>()
  for (const a of attention) counts.set(a, (counts.get(a) ?? 0) + 1)
  return [...counts].map(([k, n]) => `${n} × ${k}`).join(', ')
}

export interface ModelCardInput {
  name: string
  architecture: string // the HF class, e.g. GPT2LMHeadModel
  config: ModelConfig
  parameters: number
  baseContext: number
  checkpoint: { path: string; step: number } | null
  card?: ExportCard
  files: string[]
}

export function renderModelCard(input: ModelCardInput): string {
  const { config: c, card } = input
  const title = card?.title ?? input.name
  const extended = c.nPositions > input.baseContext
  const sparse = c.attention.some((a) => a !== 'dense')
  const lines: string[] = []
  lines.push('---', 'library_name: transformers', 'tags:', '  - gpt2', '  - long-context', '  - longctx-studio')
  if (card?.baseModel) lines.push(`base_model: ${card.baseModel}`)
  lines.push('---', '', `# ${title}`, '')
  lines.push(
    extended
      ? `A ${fmtCount(input.parameters)}-parameter ${input.architecture} whose context was extended from ` +
          `${fmtInt(input.baseContext)} to ${fmtInt(c.nPositions)} tokens with LongCtx Studio: the position ` +
          'embedding table was grown and the model fine-tuned on long and short examples.'
      : `A ${fmtCount(input.parameters)}-parameter ${input.architecture} with a context of ${fmtInt(c.nPositions)} tokens, exported by LongCtx Studio.`,
  )
  if (card?.description) lines.push('', card.description)
  lines.push('', '## Model', '', '| | |', '| --- | --- |')
  lines.push(`| Architecture | ${input.architecture} |`)
  lines.push(`| Parameters | ${fmtInt(input.parameters)} |`)
  lines.push(`| Layers × width × heads | ${c.nLayer} × ${c.nEmbd} × ${c.nHead} |`)
  lines.push(`| Context (position rows) | ${fmtInt(c.nPositions)}${extended ? ` (was ${fmtInt(input.baseContext)})` : ''} |`)
  lines.push(`| Vocabulary | ${fmtInt(c.vocabSize)} |`)
  lines.push(`| Attention per layer | ${attentionSummary(c.attention)} |`)
  if (c.attention.includes('sparse'))
    lines.push(
      `| Block-sparse layout | block ${c.sparse.block}, ${c.sparse.numLocalBlocks} local / ${c.sparse.numGlobalBlocks} global blocks |`,
    )
  lines.push('| Weights | float32 safetensors |')
  if (input.checkpoint) lines.push(`| From checkpoint | step ${fmtInt(input.checkpoint.step)} |`)

  const plan = card?.plan
  if (plan && plan.stages.length > 0) {
    lines.push('', '## How the context was extended', '')
    const facts: string[] = []
    if (plan.positionInit) facts.push(`new position rows initialised by **${plan.positionInit}**`)
    if (plan.longFraction !== undefined)
      facts.push(`${Math.round(plan.longFraction * 100)}% long / ${Math.round((1 - plan.longFraction) * 100)}% short examples`)
    if (plan.dataset) facts.push(`data: ${plan.dataset}`)
    if (facts.length) lines.push(`${facts.join('; ')}.`, '')
    lines.push('| Stage | Context | Steps | Tokens | Peak learning rate |', '| --- | --- | --- | --- | --- |')
    plan.stages.forEach((s, i) => {
      lines.push(
        `| ${s.name ?? i + 1} | ${fmtInt(s.context)} | ${s.steps !== undefined ? fmtInt(s.steps) : '—'} | ` +
          `${s.tokens !== undefined ? fmtCount(s.tokens) : '—'} | ${s.learningRate !== undefined ? s.learningRate.toExponential(1) : '—'} |`,
      )
    })
  }

  const ppl = card?.perplexity
  if (ppl && ppl.length > 0) {
    lines.push('', '## Perplexity per window', '')
    lines.push('Held-out documents cut into non-overlapping windows; PPL = exp(mean NLL).', '')
    lines.push('| Window | Before | After | Change |', '| --- | --- | --- | --- |')
    for (const row of ppl) {
      const before = row.baseline ?? null
      const change = before !== null && before > 0 ? `${row.value >= before ? '+' : ''}${(((row.value - before) / before) * 100).toFixed(1)}%` : '—'
      lines.push(`| ${fmtWindow(row.window)} | ${before !== null ? before.toFixed(2) : '—'} | ${row.value.toFixed(2)} | ${change} |`)
    }
  }

  lines.push('', '## Use', '', '```python', 'from transformers import AutoModelForCausalLM, AutoTokenizer', '')
  const remote = input.architecture !== 'GPT2LMHeadModel'
  lines.push(`tok = AutoTokenizer.from_pretrained("path/to/this/folder")`)
  lines.push(`model = AutoModelForCausalLM.from_pretrained("path/to/this/folder"${remote ? ', trust_remote_code=True' : ''})`)
  lines.push('```', '')
  lines.push(`Prompts plus generated text must stay within ${fmtInt(c.nPositions)} tokens: the position embeddings end there.`)
  if (sparse)
    lines.push(
      '',
      'Some layers use block-sparse or windowed attention. Runtimes that only implement dense attention ' +
        '(llama.cpp and what is built on it) compute every layer dense, which lowers quality: the ruGPT3XL ' +
        'restoration measured perplexity 11.68 with its sparse layers and 50.1 run dense.',
    )
  if (card?.notes?.length) lines.push('', '## Notes', '', ...card.notes.map((n) => `- ${n}`))
  lines.push('', '## Files', '', ...input.files.map((f) => `- \`${f}\``), '')
  return lines.join('\n')
}
