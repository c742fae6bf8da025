// `longctx runs [--json]`: the runs in the app's data folder (the same list as the app's home),
// with status, progress and the perplexity at the target context against the baseline.
import type { Command } from 'commander'
import type { RunSummary } from '../../api/runs.ts'
import type { CliIO } from '../common.ts'
import { dataFolders, openRunService, pplCell } from '../run-service.ts'

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n'
  return line(head) + rows.map(line).join('')
}

function row(s: RunSummary): string[] {
  const t = String(s.targetContext)
  const base = s.baselinePpl?.[t]
  const last = s.latestPpl?.[t]
  return [
    s.id,
    s.status,
    `${s.stageIndex + 1}/${s.stageCount}`,
    `${s.step}/${s.totalSteps}`,
    `${s.baseContext} -> ${s.targetContext}`,
    base === undefined && last === undefined ? '-' : `${pplCell(base)} -> ${pplCell(last)}`,
    new Date(s.updatedMs).toISOString().slice(0, 16).replace('T', ' '),
  ]
}

export function registerRuns(program: Command, io: CliIO): Command {
  return program
    .command('runs')
    .description('list the runs (the same ones the app shows)')
    .option('--json', 'print the run summaries as JSON')
    .action(async (opts: { json?: boolean }) => {
      const folders = await dataFolders()
      const runs = await (await openRunService(folders)).list()
      if (opts.json) {
        io.out(JSON.stringify(runs, null, 2) + '\n')
        return
      }
      if (runs.length === 0) {
        io.out(`No runs yet (in ${folders.runs}). Make a plan with \`longctx plan\`, then \`longctx train plan.json\`.\n`)
        return
      }
      io.out(table(['ID', 'STATUS', 'STAGE', 'STEP', 'CONTEXT', 'PPL@TARGET', 'UPDATED'], runs.map(row)))
      for (const s of runs) if (s.message && s.status !== 'completed') io.out(`${s.id}: ${s.message}\n`)
    })
}
