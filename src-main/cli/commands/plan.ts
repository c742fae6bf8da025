// `longctx plan MODEL_DIR DATASET --target N [--out plan.json]`: the default staged plan for a
// model and a dataset (an imported dataset's id, or a path, imported here with the model's
// tokenizer), with its memory estimate for this machine on stderr. `--fit` adapts micro-batch
// and recompute to the device. The file is what `longctx train` and the app's wizard run.
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { Option } from 'commander'
import type { MemoryEstimate, RunPlan } from '../../api/runs.ts'
import { importDataset } from '../../core/datasets/import.ts'
import { MANIFEST_FILE } from '../../core/datasets/store.ts'
import { gib } from '../../core/runs/memory.ts'
import { CliError, intOption, type CliIO } from '../common.ts'
import { dataFolders, openRunService, type DataFolders } from '../run-service.ts'

interface PlanOptions {
  target?: number
  out?: string
  fit?: boolean
  backend?: RunPlan['backend']
  name?: string
}

// An imported dataset's id, or a path to import (instant when it already is, for this tokenizer).
export async function resolveDataset(arg: string, modelDir: string, folders: DataFolders, io: CliIO): Promise<string> {
  if (/^[0-9a-f]{8,64}$/.test(arg) && existsSync(join(folders.datasets, arg, MANIFEST_FILE))) return arg
  if (!existsSync(arg)) throw new CliError(`${arg} is neither an imported dataset id nor a file or folder (see \`longctx dataset list\`)`)
  io.err(`importing ${resolve(arg)} with the tokenizer of ${resolve(modelDir)}…\n`)
  const r = await importDataset({ path: arg, modelDir }, { datasetsDir: folders.datasets })
  io.err(`dataset ${r.id}${r.cached ? ' (already imported)' : ''}\n`)
  return r.id
}

export function describeEstimate(e: MemoryEstimate): string {
  const rows = e.stages.map(
    (s) =>
      `  ${s.stage.padEnd(6)} ${gib(s.totalBytes).padStart(10)}  ` +
      `(weights ${gib(s.weightsBytes)}, optimizer ${gib(s.optimizerBytes)}, gradients ${gib(s.gradientsBytes)}, ` +
      `activations ${gib(s.activationsBytes)}, workspace ${gib(s.workspaceBytes)})  ${s.verdict}`,
  )
  return `memory on ${e.device} (${gib(e.stages[0]?.availableBytes ?? 0)} usable):\n${rows.join('\n')}\n`
}

export function registerPlan(program: Command, io: CliIO): Command {
  return program
    .command('plan')
    .description('write the default staged plan (base -> 2x -> 4x) for a model and a dataset')
    .argument('<MODEL_DIR>', 'model folder (HF layout with tokenizer)')
    .argument('<DATASET>', 'an imported dataset id, or a file/folder to import with the model\'s tokenizer')
    .option('--target <N>', 'target context in tokens (default 4x the model\'s)', intOption(2))
    .option('--out <FILE>', 'write the plan here (default: stdout)')
    .option('--fit', 'fit micro-batch and recompute to this machine\'s device')
    .addOption(new Option('--backend <name>', 'backend the plan asks for').choices(['auto', 'cpu', 'cuda']))
    .option('--name <TEXT>', 'the run\'s name')
    .action(async (modelDir: string, dataset: string, opts: PlanOptions) => {
      const folders = await dataFolders()
      const datasetId = await resolveDataset(dataset, modelDir, folders, io)
      const service = await openRunService(folders)
      let plan = await service.defaultPlan({ modelDir, datasetId, ...(opts.target !== undefined ? { targetContext: opts.target } : {}) })
      if (opts.backend) plan.backend = opts.backend
      if (opts.name) plan.name = opts.name
      if (opts.fit) plan = await service.fit(plan)
      const estimate = await service.estimate(plan)
      const text = JSON.stringify(plan, null, 2) + '\n'
      if (opts.out) {
        await writeFile(opts.out, text)
        io.err(`wrote ${resolve(opts.out)}: ${plan.stages.map((s) => `${s.name} (${s.steps} steps)`).join(' -> ')}\n`)
      } else {
        io.out(text)
      }
      io.err(describeEstimate(estimate))
      for (const n of plan.notes ?? []) io.err(`note: ${n}\n`)
      if (estimate.stages.some((s) => s.verdict === 'does-not-fit') && !opts.fit)
        io.err('warning: a stage does not fit in memory; run again with --fit, or edit microBatch / recompute\n')
    })
}
