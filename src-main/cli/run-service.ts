// What the run commands (plan, train, runs, eval) share: the app's data folder (from its settings;
// LONGCTX_DATA_DIR overrides) and a RunService on it, so the CLI reads and writes the same run
// folders and datasets the app shows.
import type { RunEvents } from '../api/runs.ts'
import { createNativeProbe } from '../core/native-probe.ts'
import { dataLayout } from '../core/paths.ts'
import { RunService } from '../core/runs/service.ts'
import { SettingsService } from '../core/settings.ts'

export interface DataFolders {
  datasets: string
  runs: string
}

export async function dataFolders(): Promise<DataFolders> {
  const settings = await SettingsService.open(process.env)
  const layout = dataLayout(settings.get().dataDir)
  return { datasets: layout.datasets, runs: layout.runs }
}

export type EventSink = <E extends keyof RunEvents>(event: E, payload: RunEvents[E]) => void

export async function openRunService(folders: DataFolders, emit: EventSink = () => undefined, threads?: number): Promise<RunService> {
  return RunService.open({
    runsDir: () => folders.runs,
    datasetsDir: () => folders.datasets,
    probe: createNativeProbe(),
    emit,
    ...(threads !== undefined ? { threads } : {}),
  })
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?'
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

export function pplCell(v: number | undefined): string {
  return v === undefined ? '-' : v >= 1000 ? v.toFixed(0) : v.toFixed(2)
}
