// The run folder's files: JSONL that survives a torn last line, checkpoints that count only when
// complete, retention, and the summaries built from them.
import { appendFile, mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { EvalResult, MetricPoint } from '../../src-main/api/runs.ts'
import { downsample, pplOf } from '../../src-main/core/runs/service.ts'
import {
  appendJsonl,
  filterJsonl,
  listCheckpoints,
  pruneCheckpoints,
  readJsonl,
  removePartialCheckpoints,
  runPaths,
  writeJsonAtomic,
  type CheckpointInfo,
} from '../../src-main/core/runs/store.ts'
import { tempDir } from '../helpers/temp.ts'

let tmp: Awaited<ReturnType<typeof tempDir>>
beforeAll(async () => {
  tmp = await tempDir('longctx-store-')
})
afterAll(() => tmp?.cleanup())

async function addCheckpoint(dir: string, step: number, stageEnd: boolean, opts: { sidecar?: boolean; file?: boolean } = {}) {
  const base = `step-${String(step).padStart(6, '0')}`
  const info: CheckpointInfo = {
    schema: 1,
    file: `${base}.safetensors`,
    stage: 0,
    stageStep: step,
    step,
    stageEnd,
    sampler: { version: 1, fingerprint: 'f', rng: [1, 2, 3, 4], examples: { long: 0, short: 0 }, scoredTokens: { long: 0, short: 0 } },
    trainMs: 0,
    timeMs: 0,
    bytes: 4,
  }
  if (opts.file !== false) await writeFile(join(runPaths(dir).checkpoints, info.file), 'ckpt')
  if (opts.sidecar !== false) await writeJsonAtomic(join(runPaths(dir).checkpoints, `${base}.json`), info)
}

describe('run store', () => {
  it('reads JSONL past a line torn by a crash, and filters it', async () => {
    const f = join(tmp.path, 'metrics.jsonl')
    await appendJsonl(f, [{ step: 1 }, { step: 2 }])
    await appendJsonl(f, [{ step: 3 }])
    await appendFile(f, '{"step": 4, "lo')
    expect(await readJsonl<{ step: number }>(f)).toEqual([{ step: 1 }, { step: 2 }, { step: 3 }])
    await filterJsonl<{ step: number }>(f, (p) => p.step <= 2)
    expect(await readJsonl(f)).toEqual([{ step: 1 }, { step: 2 }])
    expect(await readJsonl(join(tmp.path, 'missing.jsonl'))).toEqual([])
  })

  it('counts a checkpoint only with both files, keeps stage ends, prunes the oldest interval ones', async () => {
    const dir = join(tmp.path, 'run')
    await mkdir(runPaths(dir).checkpoints, { recursive: true })
    await addCheckpoint(dir, 2, false)
    await addCheckpoint(dir, 4, false)
    await addCheckpoint(dir, 5, true)
    await addCheckpoint(dir, 7, false)
    await addCheckpoint(dir, 8, false, { sidecar: false }) // engine file without sidecar: a save cut short
    await addCheckpoint(dir, 9, false, { file: false }) // sidecar without engine file
    await writeFile(join(runPaths(dir).checkpoints, 'step-000010.safetensors.tmp-1-2'), 'partial')
    expect((await listCheckpoints(dir)).map((c) => c.step)).toEqual([2, 4, 5, 7])
    expect(await pruneCheckpoints(dir, 1)).toEqual(['step-000002.safetensors', 'step-000004.safetensors'])
    expect((await listCheckpoints(dir)).map((c) => [c.step, c.stageEnd])).toEqual([
      [5, true],
      [7, false],
    ])
    await removePartialCheckpoints(dir)
    expect((await readdir(runPaths(dir).checkpoints)).sort()).toEqual([
      'step-000005.json',
      'step-000005.safetensors',
      'step-000007.json',
      'step-000007.safetensors',
    ])
  })

  it('downsamples metrics evenly, keeping each stage end and the last point', () => {
    const points = Array.from({ length: 1000 }, (_, i) => ({ step: i + 1, stage: i < 600 ? 0 : 1 }) as MetricPoint)
    const d = downsample(points, 100)
    expect(d.length).toBeLessThanOrEqual(102)
    expect(d.map((p) => p.step)).toContain(600)
    expect(d[d.length - 1]!.step).toBe(1000)
    expect(downsample(points.slice(0, 50), 100)).toHaveLength(50)
  })

  it('takes the baseline and the latest perplexity from the evaluations', () => {
    const ev = (label: EvalResult['label'], step: number, ppl: number): EvalResult => ({
      step,
      stage: label === 'baseline' ? -1 : 0,
      label,
      timeMs: 0,
      windows: [{ length: 256, ppl, nll: Math.log(ppl), predictions: 255 }],
      sliding: null,
      passkey: null,
    })
    expect(pplOf([])).toEqual({ baselinePpl: null, latestPpl: null })
    expect(pplOf([ev('baseline', 0, 20), ev('interval', 5, 18), ev('stage-end', 9, 17)])).toEqual({
      baselinePpl: { '256': 20 },
      latestPpl: { '256': 17 },
    })
  })
})
