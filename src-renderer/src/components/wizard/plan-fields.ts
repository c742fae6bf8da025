// The plan's editable fields with a label and a one-line explanation each, so the form, its
// tooltips and its help line all say the same thing.

export type FieldKind = 'int' | 'float' | 'bool'

export interface StageField {
  /** path inside a stage ("lr.peak") */
  key: string
  label: string
  kind: FieldKind
  help: string
  /** input step for the number spinner */
  step?: number
}

export const STAGE_FIELDS: StageField[] = [
  { key: 'context', label: 'Context', kind: 'int', step: 256, help: 'Tokens per long example in this stage; the position table grows to this length.' },
  { key: 'steps', label: 'Steps', kind: 'int', help: 'Optimizer steps in this stage. More steps learn the new length better and take longer.' },
  {
    key: 'tokensPerStep',
    label: 'Tokens / step',
    kind: 'int',
    step: 1024,
    help: 'Tokens seen per optimizer step, summed over micro-batches; a multiple of micro-batch × context.',
  },
  { key: 'microBatch', label: 'Micro-batch', kind: 'int', help: 'Sequences per forward/backward pass. Smaller uses less memory; gradients are accumulated to reach tokens/step.' },
  { key: 'lr.peak', label: 'Peak LR', kind: 'float', step: 0.00001, help: 'The learning rate after warm-up; it then decays along a cosine.' },
  { key: 'lr.warmupSteps', label: 'Warm-up', kind: 'int', help: 'Steps over which the learning rate rises from 0 to its peak.' },
  { key: 'lr.minRatio', label: 'Min ratio', kind: 'float', step: 0.05, help: 'Where the cosine ends, as a fraction of the peak learning rate (0.1 = a tenth).' },
  { key: 'pLong', label: 'p long', kind: 'float', step: 0.05, help: 'Chance that an example is long (the stage length); the rest are short (at most the original context). 0.6 keeps short-context quality.' },
  { key: 'packLong', label: 'Pack', kind: 'bool', help: 'Long examples may pack several documents, with attention stopped at each document start.' },
  { key: 'recompute', label: 'Recompute', kind: 'bool', help: 'Recompute activations in the backward pass: much less memory for about a third more time.' },
  { key: 'evalEvery', label: 'Eval every', kind: 'int', help: 'Steps between perplexity evaluations; 0 evaluates only at the end of the stage.' },
  { key: 'checkpointEvery', label: 'Checkpoint every', kind: 'int', help: 'Steps between checkpoints; 0 saves only at the stage end. A crash loses at most this many steps.' },
]

export const PLAN_HELP: Record<string, string> = {
  name: 'Shown in the runs list.',
  extendMode:
    'How new position rows are made. Tile copies the trained rows, so the model is unchanged on short inputs; interpolate stretches them; random starts them fresh.',
  seed: 'Fixes data order and initialisation: the same seed and plan give the same run, and a resumed run continues bit-exactly.',
  backend: 'Auto trains on CUDA when a supported GPU is present, otherwise on the CPU.',
  keepCheckpoints: 'Interval checkpoints kept on disk (the newest); each stage’s final checkpoint is always kept.',
  'optimizer.beta1': 'AdamW first-moment decay.',
  'optimizer.beta2': 'AdamW second-moment decay.',
  'optimizer.eps': 'AdamW epsilon, for numerical safety.',
  'optimizer.weightDecay': 'Decoupled weight decay applied each step.',
  'optimizer.gradClip': 'Gradients are scaled down when their norm exceeds this; 0 turns clipping off.',
  'optimizer.masterDtype': 'fp32 master weights are safest; bf16 with stochastic rounding halves their memory.',
  'eval.windows': 'Perplexity is measured on held-out text cut into windows of each of these lengths (tokens), before training and after each stage.',
  'eval.maxWindowsPerLength': 'At most this many held-out windows are scored per length: more is steadier and slower.',
  'eval.slidingStride': 'Also measure sliding-window perplexity with this stride (tokens); empty turns it off.',
  'eval.passkey': 'A number hidden at a depth in filler text, asked for at the end: shows whether the model really reads the long context.',
  'eval.passkey.lengths': 'Prompt lengths (tokens) to test retrieval at.',
  'eval.passkey.depths': 'Where the number is hidden, as a fraction of the prompt: 0 = start, 1 = end.',
  'eval.passkey.trials': 'Attempts per length and depth; accuracy is the share answered right.',
}
