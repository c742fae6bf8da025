export interface SegmentOption<V extends string> {
  value: V
  label: string
  disabled?: boolean
  /** why an option is disabled, shown as its tooltip */
  hint?: string
}
