import type { IconName } from '@/components/common/icons'

export interface WizardStep {
  id: 'model' | 'dataset' | 'plan' | 'review'
  label: string
  hint: string
  icon: IconName
}

export const WIZARD_STEPS: WizardStep[] = [
  { id: 'model', label: 'Model', hint: 'The model to extend', icon: 'cube' },
  { id: 'dataset', label: 'Dataset', hint: 'Text to train on', icon: 'database' },
  { id: 'plan', label: 'Plan', hint: 'Stages and memory', icon: 'plan' },
  { id: 'review', label: 'Review', hint: 'Check and start', icon: 'checkCircle' },
]
