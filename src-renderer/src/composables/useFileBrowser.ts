// State of the in-app file browser (web mode's stand-in for the native dialog), over fs.places and
// fs.list. A folder the server cannot read leaves the previous listing in place and shows why.
import { computed, ref, toValue, type MaybeRefOrGetter } from 'vue'
import type { ApiError, FsEntry, FsListing, FsPlaces } from '@contract'
import { api } from '@/api'
import { useErrorStore } from '@/stores/errors'
import type { PickKind } from './usePathPicker'

/** Folders first, then names in natural order ("run2" before "run10"), case-insensitively. */
export function sortEntries(entries: readonly FsEntry[]): FsEntry[] {
  return [...entries].sort((a, b) => {
    if (a.kind !== b.kind) return a.kind === 'dir' ? -1 : 1
    return a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: 'base' })
  })
}

export function useFileBrowser(kind: MaybeRefOrGetter<PickKind>) {
  const errors = useErrorStore()
  const places = ref<FsPlaces | null>(null)
  const listing = ref<FsListing | null>(null)
  const showHidden = ref(false)
  const loading = ref(false)
  const error = ref<ApiError | null>(null)
  /** name of the highlighted entry in the current folder */
  const selectedName = ref<string | null>(null)

  const entries = computed(() => {
    const all = listing.value?.entries ?? []
    // the server filters too; this keeps a stale listing honest right after the toggle
    return sortEntries(showHidden.value ? all : all.filter((e) => !e.hidden))
  })
  const selectedEntry = computed(() => entries.value.find((e) => e.name === selectedName.value) ?? null)

  /** What "Select" would return now, or null if nothing selectable is highlighted. */
  const selection = computed<string | null>(() => {
    const e = selectedEntry.value
    if (toValue(kind) === 'file') return e?.kind === 'file' ? e.path : null
    if (e?.kind === 'dir') return e.path
    return listing.value?.path ?? null
  })

  let seq = 0
  /** List a folder. Returns whether it could be read. */
  async function open(path: string): Promise<boolean> {
    const mine = ++seq
    loading.value = true
    try {
      const next = await api.call('fs.list', { path, showHidden: showHidden.value })
      if (mine !== seq) return false
      listing.value = next
      selectedName.value = null
      error.value = null
      return true
    } catch (e) {
      if (mine !== seq) return false
      error.value = errors.report(e, { source: 'fs.list', inline: true })
      return false
    } finally {
      if (mine === seq) loading.value = false
    }
  }

  /**
   * Load the places, then the start folder; fall back to the data folder, then home. A folder the
   * user goes to meanwhile (typed, clicked) wins: the fallbacks stop there.
   */
  async function init(startPath?: string | null): Promise<void> {
    let ours = seq // the number of the last open() this call started (none yet)
    try {
      places.value = await api.call('fs.places', {})
    } catch (e) {
      error.value = errors.report(e, { source: 'fs.places', inline: true })
    }
    const candidates = [startPath, places.value?.dataDir, places.value?.home].filter(
      (p): p is string => typeof p === 'string' && p.length > 0,
    )
    let firstError: ApiError | null = null
    for (const p of [...new Set(candidates)]) {
      if (seq !== ours) return // the user went somewhere else
      ours = seq + 1 // the number open() is about to take
      if (await open(p)) break
      firstError ??= error.value
    }
    if (seq !== ours) return
    // keep the reason the requested folder could not be shown visible above the fallback
    if (firstError && listing.value) error.value = firstError
  }

  async function up(): Promise<void> {
    const parent = listing.value?.parent
    if (parent) await open(parent)
  }

  async function setShowHidden(value: boolean): Promise<void> {
    showHidden.value = value
    if (listing.value) await open(listing.value.path)
  }

  function highlight(name: string | null) {
    selectedName.value = name
  }

  /** Double-click / Enter on an entry: folders are entered; files return their path. */
  async function activate(entry: FsEntry): Promise<string | null> {
    if (entry.kind === 'dir') {
      await open(entry.path)
      return null
    }
    selectedName.value = entry.name
    return toValue(kind) === 'file' ? entry.path : null
  }

  return {
    places,
    listing,
    entries,
    showHidden,
    loading,
    error,
    selectedName,
    selectedEntry,
    selection,
    init,
    open,
    up,
    setShowHidden,
    highlight,
    activate,
  }
}
