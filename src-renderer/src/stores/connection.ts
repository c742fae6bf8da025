// Health of the event channel, for the "disconnected — reconnecting" banner.
import { defineStore } from 'pinia'
import { computed, onScopeDispose, ref } from 'vue'
import { api, type ConnectionInfo } from '@/api'

export const useConnectionStore = defineStore('connection', () => {
  const info = ref<ConnectionInfo>(api.connection)
  const off = api.onConnectionChange((next) => {
    info.value = next
  })
  onScopeDispose(off)

  const state = computed(() => info.value.state)
  const reconnecting = computed(() => info.value.state === 'reconnecting')

  return { info, state, reconnecting }
})
