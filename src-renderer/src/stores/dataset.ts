// The New-run wizard's dataset step: the source the user picked and its preview, the import job
// (progress from 'datasets.progress' events), and the dataset chosen for the run, freshly imported
// or picked from those imported earlier.
import { defineStore } from 'pinia'
import { computed, onScopeDispose, ref } from 'vue'
import type { ApiError, DatasetImportProgress, DatasetPreview, DatasetSummary } from '@contract'
import { api } from '@/api'
import { useErrorStore } from './errors'

export const useDatasetStore = defineStore('dataset', () => {
  const errors = useErrorStore()

  // ---- the source and its preview ----
  const path = ref<string | null>(null)
  const preview = ref<DatasetPreview | null>(null)
  const previewLoading = ref(false)
  const previewError = ref<ApiError | null>(null)
  /** the record fields joined into the text; null = the server's choice (preview.textFields) */
  const fields = ref<string[] | null>(null)
  /** for a single .txt: a line equal to this ends a document; null = the file is one document */
  const separator = ref<string | null>(null)
  const skipBadLines = ref(true)

  const isRecords = computed(() => (preview.value?.fields.length ?? 0) > 0)
  const isText = computed(() => preview.value?.format === 'txt')
  /** the fields the import will use: the user's pick, else what the preview detected */
  const effectiveFields = computed(() => fields.value ?? preview.value?.textFields ?? null)

  let previewSeq = 0
  async function loadPreview(): Promise<DatasetPreview | null> {
    if (!path.value) return null
    const mine = ++previewSeq
    previewLoading.value = true
    previewError.value = null
    try {
      const result = await api.call('datasets.preview', {
        path: path.value,
        ...(fields.value ? { field: fields.value } : {}),
        ...(separator.value !== null ? { separator: separator.value } : {}),
        limit: 5,
      })
      if (mine !== previewSeq) return null
      preview.value = result
      return result
    } catch (e) {
      if (mine !== previewSeq) return null
      preview.value = null
      previewError.value = errors.report(e, { source: 'datasets.preview', inline: true })
      return null
    } finally {
      if (mine === previewSeq) previewLoading.value = false
    }
  }

  /** A new source: forget the previous one's options and look at it. */
  function pick(source: string): Promise<DatasetPreview | null> {
    path.value = source
    fields.value = null
    separator.value = null
    preview.value = null
    importError.value = null
    // a finished job's progress goes with its source; a running one is left to finish (its
    // events no longer match and are ignored) rather than blocking the new source's import
    jobId.value = null
    progress.value = null
    return loadPreview()
  }

  function setFields(next: string[] | null) {
    fields.value = next && next.length ? next : null
    return loadPreview()
  }

  function setSeparator(next: string | null) {
    separator.value = next
    return loadPreview()
  }

  // ---- the import job ----
  const jobId = ref<string | null>(null)
  const progress = ref<DatasetImportProgress | null>(null)
  const importError = ref<ApiError | null>(null)
  const starting = ref(false)
  const importing = computed(() => starting.value || (jobId.value !== null && !(progress.value?.done ?? false)))
  // Events of a job can arrive before datasets.import has answered with its id.
  const early = new Map<string, DatasetImportProgress>()

  async function startImport(modelDir: string, targetContext?: number): Promise<boolean> {
    if (!path.value || importing.value) return false
    starting.value = true
    importError.value = null
    progress.value = null
    wantContext = targetContext
    try {
      const { jobId: id } = await api.call('datasets.import', {
        path: path.value,
        modelDir,
        ...(effectiveFields.value && isRecords.value ? { field: effectiveFields.value } : {}),
        ...(isText.value && separator.value !== null ? { separator: separator.value } : {}),
        onBadLine: skipBadLines.value ? 'skip' : 'stop',
      })
      jobId.value = id
      const seen = early.get(id)
      early.clear()
      if (seen) onProgress(seen)
      return true
    } catch (e) {
      importError.value = errors.report(e, { source: 'datasets.import', inline: true })
      return false
    } finally {
      starting.value = false
    }
  }

  async function cancelImport(): Promise<void> {
    if (!jobId.value) return
    try {
      await api.call('datasets.cancel', { jobId: jobId.value })
    } catch (e) {
      errors.report(e, { source: 'datasets.cancel' })
    }
  }

  let wantContext: number | undefined
  function onProgress(p: DatasetImportProgress) {
    if (p.jobId !== jobId.value) {
      if (starting.value) early.set(p.jobId, p)
      return
    }
    progress.value = p
    if (!p.done) return
    if (p.phase === 'done' && p.datasetId) {
      void select(p.datasetId, wantContext)
      void loadList()
    } else if (p.phase === 'failed') {
      importError.value = errors.report(
        { code: 'bad_input', message: p.error ?? 'The import failed.' },
        { source: 'datasets.import', inline: true },
      )
    }
  }
  const offProgress = api.on('datasets.progress', onProgress)
  onScopeDispose(offProgress)

  // ---- the chosen dataset and the list of imported ones ----
  const dataset = ref<DatasetSummary | null>(null)
  const datasetLoading = ref(false)
  const datasetError = ref<ApiError | null>(null)
  const list = ref<DatasetSummary[]>([])
  const listLoading = ref(false)

  const ready = computed(() => dataset.value !== null)

  let selectSeq = 0
  /** Choose a dataset by id; targetContext makes its warnings speak of the run's goal. */
  async function select(id: string, targetContext?: number): Promise<DatasetSummary | null> {
    const mine = ++selectSeq
    datasetLoading.value = true
    datasetError.value = null
    try {
      const result = await api.call('datasets.get', { id, ...(targetContext ? { targetContext } : {}) })
      if (mine !== selectSeq) return null
      dataset.value = result
      return result
    } catch (e) {
      if (mine !== selectSeq) return null
      datasetError.value = errors.report(e, { source: 'datasets.get', inline: true })
      return null
    } finally {
      if (mine === selectSeq) datasetLoading.value = false
    }
  }

  async function loadList(): Promise<void> {
    listLoading.value = true
    try {
      const all = await api.call('datasets.list', {})
      list.value = [...all].sort((a, b) => b.createdAt.localeCompare(a.createdAt))
    } catch (e) {
      errors.report(e, { source: 'datasets.list' })
    } finally {
      listLoading.value = false
    }
  }

  function clearSelection() {
    selectSeq++
    dataset.value = null
    datasetError.value = null
    datasetLoading.value = false
  }

  function reset() {
    previewSeq++
    path.value = null
    preview.value = null
    previewError.value = null
    previewLoading.value = false
    fields.value = null
    separator.value = null
    jobId.value = null
    progress.value = null
    importError.value = null
    clearSelection()
  }

  return {
    path,
    preview,
    previewLoading,
    previewError,
    fields,
    separator,
    skipBadLines,
    isRecords,
    isText,
    effectiveFields,
    pick,
    loadPreview,
    setFields,
    setSeparator,
    jobId,
    progress,
    importError,
    importing,
    startImport,
    cancelImport,
    dataset,
    datasetLoading,
    datasetError,
    list,
    listLoading,
    ready,
    select,
    loadList,
    clearSelection,
    reset,
  }
})
