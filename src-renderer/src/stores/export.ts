// Export jobs started from the UI (the Export dialog): start, cancel, and each job's progress as
// 'export.progress' events report it. Jobs survive the dialog closing; the list is the core's.
import { defineStore } from 'pinia'
import { onScopeDispose, ref } from 'vue'
import type { ApiError, ArgsOf, ExportJob, ExportProgress } from '@contract'
import { api } from '@/api'
import { useErrorStore } from './errors'

export const useExportStore = defineStore('export', () => {
  const errors = useErrorStore()
  const progress = ref<Record<string, ExportProgress>>({})
  const jobs = ref<ExportJob[]>([])

  async function start(args: ArgsOf<'export.start'>): Promise<{ jobId: string } | { error: ApiError }> {
    try {
      const r = await api.call('export.start', args)
      // the first event may have come before the reply; keep whichever is newer
      progress.value = {
        ...progress.value,
        [r.jobId]: progress.value[r.jobId] ?? { jobId: r.jobId, format: args.format, phase: 'loading', fraction: 0, detail: 'starting', done: false },
      }
      return r
    } catch (e) {
      return { error: errors.report(e, { source: 'export.start', inline: true }) }
    }
  }

  async function cancel(jobId: string): Promise<void> {
    try {
      await api.call('export.cancel', { jobId })
    } catch (e) {
      errors.report(e, { source: 'export.cancel' })
    }
  }

  async function load(): Promise<void> {
    try {
      jobs.value = await api.call('export.jobs', {})
      for (const j of jobs.value) progress.value = { ...progress.value, [j.jobId]: j.progress }
    } catch (e) {
      errors.report(e, { source: 'export.jobs' })
    }
  }

  const off = api.on('export.progress', (p) => {
    progress.value = { ...progress.value, [p.jobId]: p }
  })
  onScopeDispose(off)

  return { progress, jobs, start, cancel, load }
})
