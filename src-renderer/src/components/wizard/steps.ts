import type { IconName } from '@/components/common/icons'

export interface WizardStep {
  id: 'model' | 'dataset' | 'plan' | 'review'
  label: string
  hint: string
  icon: IconName
  /** what the placeholder says the step will do, for steps not built yet */
  future?: string
}

export const WIZARD_STEPS: WizardStep[] = [
  { id: 'model', label: 'Model', hint: 'The model to extend', icon: 'cube' },
  {
    id: 'dataset',
    label: 'Dataset',
    hint: 'Text to train on',
    icon: 'database',
    future:
      'Choose the training text: a folder of documents or a JSONL file. Long documents become long examples; the held-out part measures perplexity per window.',
  },
  {
    id: 'plan',
    label: 'Plan',
    hint: 'Stages and memory',
    icon: 'plan',
    future:
      'Set the stages (by default 2× then 4× the trained context), steps, learning rate and the 60/40 long/short mix, with a GPU memory estimate per stage that fits itself to your card.',
  },
  {
    id: 'review',
    label: 'Review',
    hint: 'Check and start',
    icon: 'checkCircle',
    future: 'See the whole run at a glance, with time and disk estimates, and start it. Baseline perplexity is measured first.',
  },
]
