// The New-run wizard's model step: which folder the user picked and what models.inspect found.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { ApiError, ModelInfo } from '@contract'
import { api } from '@/api'
import { useErrorStore } from './errors'

export const useModelStore = defineStore('model', () => {
  const errors = useErrorStore()
  const path = ref<string | null>(null)
  const info = ref<ModelInfo | null>(null)
  /** shown prominently in the model step, so it is logged inline rather than toasted */
  const error = ref<ApiError | null>(null)
  const loading = ref(false)

  const ready = computed(() => info.value !== null && error.value === null)

  let seq = 0
  /** Inspect a model folder. A newer pick supersedes an inspection still in flight. */
  async function inspect(folder: string): Promise<ModelInfo | null> {
    const mine = ++seq
    path.value = folder
    info.value = null
    error.value = null
    loading.value = true
    try {
      const result = await api.call('models.inspect', { path: folder })
      if (mine !== seq) return null
      info.value = result
      return result
    } catch (e) {
      if (mine !== seq) return null
      error.value = errors.report(e, { source: 'models.inspect', inline: true })
      return null
    } finally {
      if (mine === seq) loading.value = false
    }
  }

  function reset() {
    seq++
    path.value = null
    info.value = null
    error.value = null
    loading.value = false
  }

  return { path, info, error, loading, ready, inspect, reset }
})
