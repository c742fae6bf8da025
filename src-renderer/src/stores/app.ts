import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { AppInfo } from '@contract'
import { api } from '@/api'
import { useErrorStore } from './errors'

export const useAppStore = defineStore('app', () => {
  const errors = useErrorStore()
  const info = ref<AppInfo | null>(null)
  const loading = ref(false)

  // The transport is known before app.info answers, so the footer never shows a blank mode.
  const mode = computed<'electron' | 'web'>(() => info.value?.mode ?? api.mode)

  async function load(): Promise<void> {
    loading.value = true
    try {
      info.value = await api.call('app.info', {})
    } catch (e) {
      errors.report(e, { source: 'app.info' })
    } finally {
      loading.value = false
    }
  }

  return { info, loading, mode, load }
})
