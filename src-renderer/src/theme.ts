// Theme resolution and application. The setting is 'system' | 'dark' | 'light'; what the page
// wears is always 'dark' or 'light' (a data-theme attribute the CSS variables key on).
import type { Theme } from '@contract'

export type ResolvedTheme = 'dark' | 'light'

const STORAGE_KEY = 'longctx.theme'

export function resolveTheme(theme: Theme, systemPrefersDark: boolean): ResolvedTheme {
  if (theme === 'dark' || theme === 'light') return theme
  return systemPrefersDark ? 'dark' : 'light'
}

export function isTheme(value: unknown): value is Theme {
  return value === 'system' || value === 'dark' || value === 'light'
}

/** Set the page's theme; a no-op where there is no document (unit tests). */
export function applyTheme(theme: ResolvedTheme, doc: Document | undefined = globalThis.document): void {
  if (!doc) return
  doc.documentElement.dataset.theme = theme
  // native controls (scrollbars, date pickers) follow too
  doc.documentElement.style.colorScheme = theme
}

// The settings arrive over the API a few milliseconds after the first paint. Remembering the last
// choice locally lets the very first frame already wear the right theme instead of flashing.
export function rememberedTheme(): Theme {
  try {
    const v = globalThis.localStorage?.getItem(STORAGE_KEY)
    return isTheme(v) ? v : 'system'
  } catch {
    return 'system' // storage can be disabled (privacy settings, file:// quirks)
  }
}

export function rememberTheme(theme: Theme): void {
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, theme)
  } catch {
    // not worth bothering the user about
  }
}

export function systemPrefersDark(): boolean {
  return globalThis.matchMedia?.('(prefers-color-scheme: dark)').matches ?? false
}
