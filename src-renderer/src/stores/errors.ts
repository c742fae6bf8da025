// Every failed API call a store makes ends up here, normalised to an ApiError. Errors that a view
// already shows next to the field that caused them are recorded with `inline: true`: they stay in
// the log but do not also pop up as a toast.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { ApiError, ApiErrorCode } from '@contract'
import { toApiError } from '@/api'

export interface ReportedError {
  id: number
  code: ApiErrorCode
  message: string
  details?: string
  /** the API method (or action) that failed, e.g. "settings.update" */
  source?: string
  inline: boolean
  dismissed: boolean
  /** how many times the same error repeated in a row */
  count: number
  atMs: number
}

export interface ReportOptions {
  source?: string
  inline?: boolean
}

const MAX_ENTRIES = 50

export const useErrorStore = defineStore('errors', () => {
  const entries = ref<ReportedError[]>([])
  let nextId = 1

  const toasts = computed(() => entries.value.filter((e) => !e.inline && !e.dismissed))
  const latest = computed<ReportedError | null>(() => entries.value.at(-1) ?? null)

  /** Record a failure; returns it as an ApiError so callers can keep it for inline display. */
  function report(reason: unknown, options: ReportOptions = {}): ApiError {
    const err = toApiError(reason)
    const inline = options.inline ?? false
    const last = entries.value.at(-1)
    // A retry loop or a flaky poll would otherwise stack identical toasts.
    if (
      last &&
      !last.dismissed &&
      last.code === err.code &&
      last.message === err.message &&
      last.source === options.source &&
      last.inline === inline
    ) {
      last.count++
      last.atMs = Date.now()
      last.details = err.details
      return err
    }
    entries.value.push({
      id: nextId++,
      code: err.code,
      message: err.message,
      details: err.details,
      source: options.source,
      inline,
      dismissed: false,
      count: 1,
      atMs: Date.now(),
    })
    if (entries.value.length > MAX_ENTRIES) entries.value.splice(0, entries.value.length - MAX_ENTRIES)
    return err
  }

  function dismiss(id: number) {
    const e = entries.value.find((x) => x.id === id)
    if (e) e.dismissed = true
  }

  function dismissAll() {
    for (const e of entries.value) e.dismissed = true
  }

  function clear() {
    entries.value = []
  }

  return { entries, toasts, latest, report, dismiss, dismissAll, clear }
})
