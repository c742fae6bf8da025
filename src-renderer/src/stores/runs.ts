// The runs list (home): every run on this machine, kept current by 'runs.status' events, and the
// actions on a run that do not need its figures (resume, delete).
import { defineStore } from 'pinia'
import { computed, onScopeDispose, ref } from 'vue'
import type { RunSummary } from '@contract'
import { api } from '@/api'
import { useErrorStore } from './errors'

export const useRunsStore = defineStore('runs', () => {
  const errors = useErrorStore()
  const runs = ref<RunSummary[]>([])
  const loaded = ref(false)
  const loading = ref(false)
  /** ids with an action in flight, so their buttons can show it */
  const busy = ref<Record<string, boolean>>({})

  const sorted = computed(() => [...runs.value].sort((a, b) => b.updatedMs - a.updatedMs))
  const running = computed(() => sorted.value.filter((r) => r.status === 'running'))

  function upsert(s: RunSummary) {
    const i = runs.value.findIndex((r) => r.id === s.id)
    if (i < 0) runs.value = [...runs.value, s]
    // an event older than what we hold (a slow reply racing an event) must not roll back the row
    else if (s.updatedMs >= runs.value[i].updatedMs) runs.value = runs.value.map((r, j) => (j === i ? s : r))
  }

  let loadSeq = 0
  async function load(): Promise<void> {
    const mine = ++loadSeq
    loading.value = true
    try {
      const list = await api.call('runs.list', {})
      if (mine !== loadSeq) return
      runs.value = list
      loaded.value = true
    } catch (e) {
      errors.report(e, { source: 'runs.list' })
    } finally {
      if (mine === loadSeq) loading.value = false
    }
  }

  async function act(runId: string, method: 'runs.pause' | 'runs.resume' | 'runs.stop'): Promise<RunSummary | null> {
    busy.value = { ...busy.value, [runId]: true }
    try {
      const s = await api.call(method, { runId })
      upsert(s)
      return s
    } catch (e) {
      errors.report(e, { source: method })
      return null
    } finally {
      const { [runId]: _, ...rest } = busy.value
      busy.value = rest
    }
  }

  const pause = (id: string) => act(id, 'runs.pause')
  const resume = (id: string) => act(id, 'runs.resume')
  const stop = (id: string) => act(id, 'runs.stop')

  async function remove(runId: string): Promise<boolean> {
    busy.value = { ...busy.value, [runId]: true }
    try {
      const { deleted } = await api.call('runs.delete', { runId })
      if (deleted) runs.value = runs.value.filter((r) => r.id !== runId)
      return deleted
    } catch (e) {
      errors.report(e, { source: 'runs.delete' })
      return false
    } finally {
      const { [runId]: _, ...rest } = busy.value
      busy.value = rest
    }
  }

  const offStatus = api.on('runs.status', upsert)
  onScopeDispose(offStatus)

  return { runs, sorted, running, loaded, loading, busy, load, upsert, pause, resume, stop, remove }
})
