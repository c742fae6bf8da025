// `longctx eval RUN_OR_MODEL --windows 2048,4096,8192 [--dataset ID] [--json]`: perplexity per
// window on a dataset's held-out documents (non-overlapping windows, exactly as a run evaluates).
// RUN_OR_MODEL is a run id (its final model, or its latest checkpoint; its own dataset unless
// --dataset) or a model folder (then --dataset is required).
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { InvalidArgumentError, Option } from 'commander'
import { runPlanSchema, type WindowPerplexity } from '../../api/runs.ts'
import { readJson, runPaths } from '../../core/runs/store.ts'
import type { EngineModel } from '../../engine/model.ts'
import { openDataset } from '../../worker/train.ts'
import { evaluationSpans, perplexityOnSpans } from '../../worker/evaluate.ts'
import { openRunModel } from '../../worker/run-model.ts'
import { BACKEND_CHOICES, CliError, intOption, openModel, setThreads, type BackendOption, type CliIO } from '../common.ts'
import { dataFolders, pplCell } from '../run-service.ts'

interface EvalOptions {
  windows: number[]
  dataset?: string
  json?: boolean
  maxWindows: number
  backend: BackendOption
  threads?: number
}

function windowList(value: string): number[] {
  const out = value.split(',').map((v) => Number(v.trim()))
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 2)) throw new InvalidArgumentError('expected lengths like 2048,4096,8192')
  return [...new Set(out)].sort((a, b) => a - b)
}

export function registerEval(program: Command, io: CliIO): Command {
  return program
    .command('eval')
    .description('perplexity per window on held-out documents, for a run or a model folder')
    .argument('<RUN_OR_MODEL>', 'a run id (see `longctx runs`) or a model folder')
    .requiredOption('--windows <LIST>', 'window lengths, e.g. 2048,4096,8192', windowList)
    .option('--dataset <ID>', 'imported dataset whose held-out documents are scored (default: the run\'s)')
    .option('--max-windows <N>', 'held-out windows of the longest length scored at most (shorter lengths cut the same text finer)', intOption(1), 64)
    .option('--json', 'print JSON')
    .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_CHOICES).default('auto'))
    .option('--threads <n>', 'CPU threads (0 = all cores)', intOption(0, 4096))
    .action(async (target: string, opts: EvalOptions) => {
      setThreads(opts.threads)
      const folders = await dataFolders()
      const runDir = join(folders.runs, target)
      let model: EngineModel
      let source: string
      let datasetId = opts.dataset
      if (/^[\w-]{1,80}$/.test(target) && existsSync(runPaths(runDir).plan)) {
        const plan = runPlanSchema.parse(await readJson(runPaths(runDir).plan))
        datasetId ??= plan.datasetId
        ;({ model, source } = await openRunModel(runDir, plan, opts.backend))
      } else if (existsSync(join(target, 'config.json'))) {
        if (!datasetId) throw new CliError('give --dataset ID: a model folder has no dataset of its own (see `longctx dataset list`)')
        model = await openModel(target, opts.backend)
        source = resolve(target)
      } else {
        throw new CliError(`${target} is neither a run id (see \`longctx runs\`) nor a model folder with config.json`)
      }
      const reader = await openDataset(folders.datasets, datasetId)
      try {
        const ctx = model.config.nPositions
        // The same held-out text for every length (see worker/evaluate.ts).
        const spans = evaluationSpans(reader, opts.windows, opts.maxWindows)
        const results: WindowPerplexity[] = []
        const skipped: Array<{ length: number; reason: string }> = []
        for (const w of opts.windows) {
          if (w > ctx) {
            skipped.push({ length: w, reason: `longer than the model's context (${ctx})` })
            continue
          }
          const r = await perplexityOnSpans(model, reader, spans, w, Math.max(w, 4096))
          if (r) results.push(r)
          else skipped.push({ length: w, reason: 'no held-out document is that long' })
        }
        if (opts.json) {
          io.out(JSON.stringify({ model: source, dataset: datasetId, context: ctx, windows: results, skipped }, null, 2) + '\n')
          return
        }
        io.out(`model    ${source} (context ${ctx}, ${model.backend})\ndataset  ${datasetId} (held-out documents)\n\n`)
        io.out('  window  predictions  perplexity\n')
        for (const r of results) io.out(`  ${String(r.length).padStart(6)}  ${String(r.predictions).padStart(11)}  ${pplCell(r.ppl).padStart(10)}\n`)
        for (const s of skipped) io.out(`  ${String(s.length).padStart(6)}  skipped: ${s.reason}\n`)
      } finally {
        model.dispose()
        await reader.close()
      }
    })
}
