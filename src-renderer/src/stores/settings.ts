// User settings (settings.get / settings.update) and the theme the page wears because of them.
import { defineStore } from 'pinia'
import { computed, onScopeDispose, ref, watch } from 'vue'
import type { ApiError, ArgsOf, BackendChoice, Settings, Theme } from '@contract'
import { api } from '@/api'
import { usePrefersDark } from '@/composables/usePrefersDark'
import { applyTheme, rememberTheme, rememberedTheme, resolveTheme } from '@/theme'
import { useErrorStore } from './errors'

export type SettingsPatch = ArgsOf<'settings.update'>

export const useSettingsStore = defineStore('settings', () => {
  const errors = useErrorStore()
  const settings = ref<Settings | null>(null)
  const loading = ref(false)
  const saving = ref(false)
  /** why the last data-folder change was refused; shown under the field, not as a toast */
  const dataDirError = ref<ApiError | null>(null)

  const theme = computed<Theme>(() => settings.value?.theme ?? rememberedTheme())
  const prefersDark = usePrefersDark()
  const resolvedTheme = computed(() => resolveTheme(theme.value, prefersDark.value))
  watch(resolvedTheme, (t) => applyTheme(t), { immediate: true })
  watch(theme, (t) => rememberTheme(t))

  async function load(): Promise<void> {
    loading.value = true
    try {
      settings.value = await api.call('settings.get', {})
    } catch (e) {
      errors.report(e, { source: 'settings.get' })
    } finally {
      loading.value = false
    }
  }

  /** Returns whether the server accepted the change. */
  async function update(patch: SettingsPatch): Promise<boolean> {
    const before = settings.value
    // Theme and backend are applied at once so the switch feels instant; they are rolled back if
    // the server refuses. A data folder is only shown once the server has accepted it.
    if (before && (patch.theme !== undefined || patch.backend !== undefined)) {
      settings.value = {
        ...before,
        ...(patch.theme !== undefined ? { theme: patch.theme } : {}),
        ...(patch.backend !== undefined ? { backend: patch.backend } : {}),
      }
    }
    const touchesDataDir = patch.dataDir !== undefined
    if (touchesDataDir) dataDirError.value = null
    saving.value = true
    try {
      settings.value = await api.call('settings.update', patch)
      return true
    } catch (e) {
      if (before && settings.value) {
        settings.value = {
          ...settings.value,
          ...(patch.theme !== undefined ? { theme: before.theme } : {}),
          ...(patch.backend !== undefined ? { backend: before.backend } : {}),
        }
      }
      if (touchesDataDir) dataDirError.value = errors.report(e, { source: 'settings.update', inline: true })
      else errors.report(e, { source: 'settings.update' })
      return false
    } finally {
      saving.value = false
    }
  }

  const setTheme = (t: Theme) => update({ theme: t })
  const setBackend = (b: BackendChoice) => update({ backend: b })
  const setDataDir = (dir: string) => update({ dataDir: dir })
  function clearDataDirError() {
    dataDirError.value = null
  }

  // Another window or tab changed them (or the server normalised a path): take its word.
  const off = api.on('settings.changed', (s) => {
    settings.value = s
  })
  // a setup store runs in its own effect scope, which $dispose() ends
  onScopeDispose(off)

  return {
    settings,
    loading,
    saving,
    dataDirError,
    theme,
    resolvedTheme,
    load,
    update,
    setTheme,
    setBackend,
    setDataDir,
    clearDataDirError,
  }
})
