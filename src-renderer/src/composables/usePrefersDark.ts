import { onScopeDispose, ref, type Ref } from 'vue'

/** Follows the OS colour scheme; the media listener is removed when the owning scope ends. */
export function usePrefersDark(): Ref<boolean> {
  const query = globalThis.matchMedia?.('(prefers-color-scheme: dark)')
  const prefersDark = ref(query?.matches ?? false)
  if (query) {
    const onChange = (e: MediaQueryListEvent) => {
      prefersDark.value = e.matches
    }
    query.addEventListener('change', onChange)
    onScopeDispose(() => query.removeEventListener('change', onChange))
  }
  return prefersDark
}
