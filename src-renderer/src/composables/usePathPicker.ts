// Pick a file or folder in either mode. dialog.pick opens the native dialog in Electron; in web
// mode it answers native:false and we open the in-app browser (FileBrowser.vue, rendered by
// PathPicker.vue from `browser`), resolving the same promise when the user selects or cancels.
import { onScopeDispose, ref } from 'vue'
import { api } from '@/api'
import { useErrorStore } from '@/stores/errors'

export type PickKind = 'file' | 'folder'

export interface PickRequest {
  kind: PickKind
  title?: string
  defaultPath?: string
}

export function usePathPicker() {
  const errors = useErrorStore()
  /** the open in-app browser request, or null when none is showing */
  const browser = ref<PickRequest | null>(null)
  /** true while a pick is in progress (native dialog or in-app browser) */
  const picking = ref(false)
  let settle: ((path: string | null) => void) | null = null

  function finish(path: string | null) {
    browser.value = null
    picking.value = false
    const s = settle
    settle = null
    s?.(path)
  }

  /** Resolves to the chosen absolute path, or null when the user cancelled. */
  async function pick(request: PickRequest): Promise<string | null> {
    if (settle) finish(null) // a second pick supersedes an unfinished one
    picking.value = true
    let answer: { path: string | null; native: boolean }
    try {
      answer = await api.call('dialog.pick', {
        kind: request.kind,
        ...(request.title ? { title: request.title } : {}),
        ...(request.defaultPath ? { defaultPath: request.defaultPath } : {}),
      })
    } catch (e) {
      picking.value = false
      errors.report(e, { source: 'dialog.pick' })
      return null
    }
    if (answer.native) {
      picking.value = false
      return answer.path
    }
    return new Promise<string | null>((resolve) => {
      settle = resolve
      browser.value = { ...request }
    })
  }

  // A view that goes away mid-pick must not leave its caller awaiting forever.
  onScopeDispose(() => finish(null))

  return {
    browser,
    picking,
    pick,
    choose: (path: string) => finish(path),
    cancel: () => finish(null),
  }
}
