// Machine facts (system.info) plus the live GPU figures pushed as system.gpus events. The event
// subscriptions live as long as the store; $dispose() (or the app unmounting) releases them.
import { defineStore } from 'pinia'
import { computed, onScopeDispose, ref } from 'vue'
import type { GpuInfo, SystemInfo } from '@contract'
import { api } from '@/api'
import { useErrorStore } from './errors'

export const useSystemStore = defineStore('system', () => {
  const errors = useErrorStore()
  const info = ref<SystemInfo | null>(null)
  const liveGpus = ref<GpuInfo[] | null>(null)
  const lastGpuUpdateMs = ref<number | null>(null)
  const loading = ref(false)

  /** Live figures when events flow, the snapshot from system.info until then. */
  const gpus = computed<GpuInfo[]>(() => liveGpus.value ?? info.value?.gpus ?? [])
  const hasGpu = computed(() => gpus.value.length > 0)
  const backends = computed(() => info.value?.backends ?? [])

  let loadSeq = 0
  async function load(): Promise<void> {
    const seq = ++loadSeq
    loading.value = true
    try {
      const next = await api.call('system.info', {})
      if (seq === loadSeq) info.value = next // an older, slower answer must not win
    } catch (e) {
      errors.report(e, { source: 'system.info' })
    } finally {
      if (seq === loadSeq) loading.value = false
    }
  }

  const offGpus = api.on('system.gpus', (list) => {
    liveGpus.value = list
    lastGpuUpdateMs.value = Date.now()
  })
  // Free space is measured in the data folder: when it moves, the disk figures are stale.
  const offSettings = api.on('settings.changed', (s) => {
    if (info.value && s.dataDir !== info.value.dataDir) void load()
  })
  onScopeDispose(() => {
    offGpus()
    offSettings()
  })

  return { info, liveGpus, lastGpuUpdateMs, gpus, hasGpu, backends, loading, load }
})
