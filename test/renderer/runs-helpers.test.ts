// Pure helpers of the wizard and the monitor: plan validation (the renderer's copy of the schema's
// rules), server error mapping, perplexity deltas, chart shaping, stage progress, passkey grid,
// histogram bars, number formats.
import { describe, expect, it } from 'vitest'
import { runPlanSchema, type RunPlan } from '../../src-main/api/runs.ts'
import { atLeastRows, histogramBars } from '@/datasets/histogram'
import { formatCompact, formatContext, formatLr, formatPpl, formatSignedPercent } from '@/format'
import { metricColumns, perplexityColumns, stageBoundaries, thinPoints } from '@/runs/chart-data'
import { perplexityRows, pplTone, summaryPplRows } from '@/runs/perplexity'
import { getAt, parseNumberList, serverFieldErrors, setAt, validatePlan } from '@/runs/plan-rules'
import { canResume, passkeyGrid, stageProgress } from '@/runs/progress'
import { runSourceLabel } from '@/runs/source'
import { datasetSummary, evalResult, metricPoint, runPlan } from './fake-api'

function edited(edit: (p: RunPlan) => void): RunPlan {
  const p = structuredClone(runPlan)
  edit(p)
  return p
}

/** The server's verdict, by the same dotted keys, from the real zod schema. */
function schemaErrors(plan: RunPlan): string[] {
  const r = runPlanSchema.safeParse(plan)
  return r.success ? [] : r.error.issues.map((i) => i.path.join('.'))
}

describe('validatePlan', () => {
  it('accepts the fixture plan, as the schema does', () => {
    expect(validatePlan(runPlan)).toEqual({})
    expect(schemaErrors(runPlan)).toEqual([])
  })

  // each case breaks one rule; the renderer must flag the same field the schema flags
  const cases: Array<[string, (p: RunPlan) => void, string]> = [
    ['empty name', (p) => (p.name = ''), 'name'],
    ['fractional steps', (p) => (p.stages[0].steps = 2.5), 'stages.0.steps'],
    ['zero micro-batch', (p) => (p.stages[1].microBatch = 0), 'stages.1.microBatch'],
    ['peak LR above 1', (p) => (p.stages[0].lr.peak = 2), 'stages.0.lr.peak'],
    ['peak LR of 0', (p) => (p.stages[0].lr.peak = 0), 'stages.0.lr.peak'],
    ['p long above 1', (p) => (p.stages[0].pLong = 1.5), 'stages.0.pLong'],
    ['negative eval interval', (p) => (p.stages[0].evalEvery = -1), 'stages.0.evalEvery'],
    ['a shrinking context', (p) => (p.stages[1].context = 1024), 'stages.1.context'],
    ['a context below the base', (p) => (p.stages[0].context = 512), 'stages.0.context'],
    ['tokens per step not a multiple', (p) => (p.stages[0].tokensPerStep = 5000), 'stages.0.tokensPerStep'],
    ['warm-up longer than the stage', (p) => (p.stages[0].lr.warmupSteps = 11), 'stages.0.lr.warmupSteps'],
    ['beta2 of 1', (p) => (p.optimizer.beta2 = 1), 'optimizer.beta2'],
    ['eps of 0', (p) => (p.optimizer.eps = 0), 'optimizer.eps'],
    ['no windows', (p) => (p.eval.windows = []), 'eval.windows'],
    ['a depth above 1', (p) => (p.eval.passkey!.depths = [0, 1.5]), 'eval.passkey.depths'],
    ['sliding stride 0', (p) => (p.eval.slidingStride = 0), 'eval.slidingStride'],
    ['keep 0 checkpoints', (p) => (p.keepCheckpoints = 0), 'keepCheckpoints'],
    ['a negative seed', (p) => (p.seed = -1), 'seed'],
  ]
  for (const [what, edit, field] of cases) {
    it(`flags ${what} on ${field}, like the schema`, () => {
      const plan = edited(edit)
      expect(Object.keys(validatePlan(plan))).toContain(field)
      expect(schemaErrors(plan).some((k) => k === field || k.startsWith(field + '.'))).toBe(true)
    })
  }

  it('says "enter a number" for an empty box (NaN) instead of a range message', () => {
    const plan = edited((p) => (p.stages[0].steps = Number.NaN))
    expect(validatePlan(plan)['stages.0.steps']).toBe('enter a number')
  })

  it('uses the schema\'s wording for the cross-field rules', () => {
    const plan = edited((p) => (p.stages[0].tokensPerStep = 5000))
    expect(validatePlan(plan)['stages.0.tokensPerStep']).toBe('must be a multiple of microBatch x context (4096)')
  })
})

describe('serverFieldErrors', () => {
  it('maps the core\'s "path: message; …" details to plan fields', () => {
    const details = 'plan.stages.0.steps: Too small: expected number to be >0; plan.seed: Invalid input; plan: Unrecognized key: "x"'
    expect(serverFieldErrors(details)).toEqual({
      'stages.0.steps': 'Too small: expected number to be >0',
      seed: 'Invalid input',
      '(plan)': 'Unrecognized key: "x"',
    })
  })

  it('keeps a message that itself contains "; " whole', () => {
    expect(serverFieldErrors('plan.name: too long; shorten it please')).toEqual({ name: 'too long; shorten it please' })
  })

  it('is empty without details', () => {
    expect(serverFieldErrors(undefined)).toEqual({})
  })
})

describe('plan paths and lists', () => {
  it('reads and writes dotted paths', () => {
    const p = structuredClone(runPlan)
    setAt(p, 'stages.1.lr.peak', 1e-4)
    expect(getAt(p, 'stages.1.lr.peak')).toBe(1e-4)
    expect(getAt(p, 'stages.9.lr')).toBeUndefined()
    expect(() => setAt(p, 'nothing.here', 1)).toThrow()
  })

  it('parses number lists with commas, spaces and k', () => {
    expect(parseNumberList('2048, 4096 8k')).toEqual([2048, 4096, 8192])
    expect(parseNumberList('0, 0.5,1')).toEqual([0, 0.5, 1])
    expect(parseNumberList('12, x').map(Number.isNaN)).toEqual([false, true])
    expect(parseNumberList('  ')).toEqual([])
  })
})

describe('perplexityRows', () => {
  const evals = [
    evalResult('baseline', -1, 0, { 1024: 11.68, 2048: 400, 4096: 2000 }),
    evalResult('interval', 0, 5, { 1024: 11.9, 2048: 12.5 }),
    evalResult('stage-end', 0, 10, { 1024: 11.8, 2048: 12.2 }),
    evalResult('stage-end', 1, 20, { 1024: 11.77, 2048: 11.99, 4096: 13.0 }),
  ]

  it('gives baseline, per stage, latest and the change per window', () => {
    const rows = perplexityRows(evals, [1024, 2048, 4096], 2)
    expect(rows.map((r) => r.window)).toEqual([1024, 2048, 4096])
    const r1k = rows[0]
    expect(r1k.baseline).toBe(11.68)
    expect(r1k.perStage).toEqual([11.8, 11.77])
    expect(r1k.latest).toBe(11.77)
    expect(r1k.changePct).toBeCloseTo((11.77 / 11.68 - 1) * 100, 10)
    expect(r1k.tone).toBe('same') // +0.8% is within the noise band
    expect(rows[1].tone).toBe('better')
    expect(rows[2].perStage).toEqual([null, 13.0])
  })

  it('keeps the newest value of a window measured only earlier', () => {
    const rows = perplexityRows(evals.slice(0, 3), [1024, 2048, 4096], 2)
    expect(rows[2].latest).toBeNull() // 4k only at the baseline: no "latest" yet
    expect(rows[2].tone).toBe('new')
    expect(rows[1].latest).toBe(12.2)
  })

  it('lists windows an evaluation reported even if the plan does not name them', () => {
    expect(perplexityRows([evalResult('baseline', -1, 0, { 512: 9 })], [1024], 1).map((r) => r.window)).toEqual([512, 1024])
  })

  it('tones: better, same, worse, new', () => {
    expect(pplTone(-5)).toBe('better')
    expect(pplTone(1.9)).toBe('same')
    expect(pplTone(2.5)).toBe('worse')
    expect(pplTone(null)).toBe('new')
  })

  it('reads the runs list summary maps', () => {
    const rows = summaryPplRows({ '2048': 11.68 }, { '2048': 11.77, '8192': 13 })
    expect(rows).toMatchObject([
      { window: 2048, baseline: 11.68, latest: 11.77, tone: 'same' },
      { window: 8192, baseline: null, latest: 13, changePct: null },
    ])
  })
})

describe('chart data', () => {
  it('puts stage lines half-way between the stages\' steps', () => {
    expect(stageBoundaries(runPlan)).toEqual([{ step: 10.5, label: '4k' }])
  })

  it('makes uPlot columns, with null for missing values', () => {
    const pts = [metricPoint(1), metricPoint(2, 0, { deviceUsedBytes: null })]
    expect(metricColumns(pts, [(p) => p.loss, (p) => p.deviceUsedBytes])).toEqual([[1, 2], [2.99, 2.98], [pts[0].deviceUsedBytes, null]])
  })

  it('puts perplexity per window on the evaluation steps, the baseline at 0', () => {
    const { windows, data } = perplexityColumns([
      evalResult('baseline', -1, 0, { 1024: 11, 2048: 300 }),
      evalResult('interval', 0, 5, { 1024: 12 }),
      evalResult('stage-end', 0, 10, { 1024: 11.5, 2048: 13 }),
    ])
    expect(windows).toEqual([1024, 2048])
    expect(data).toEqual([
      [0, 5, 10],
      [11, 12, 11.5],
      [300, null, 13],
    ])
  })

  it('thins long series evenly and keeps both ends', () => {
    const xs = Array.from({ length: 1001 }, (_, i) => i)
    const thin = thinPoints(xs, 11)
    expect(thin).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000])
    expect(thinPoints([1, 2], 10)).toEqual([1, 2])
  })
})

describe('stageProgress', () => {
  const pts = [metricPoint(1), metricPoint(2), metricPoint(3, 0, { stepMs: 300 })]

  it('marks done, current and waiting stages with ETA from recent step times', () => {
    const [a, b] = stageProgress(runPlan, pts, 0, 3, false)
    expect(a).toMatchObject({ state: 'current', stepsDone: 3, steps: 10 })
    expect(a.fraction).toBeCloseTo(0.3)
    expect(a.elapsedMs).toBe(500)
    expect(a.etaMs).toBeCloseTo(7 * (500 / 3))
    expect(b).toMatchObject({ state: 'todo', stepsDone: 0, etaMs: null })
  })

  it('counts a finished stage and the next one from the total steps', () => {
    const [a, b] = stageProgress(runPlan, [...pts, metricPoint(12, 1)], 1, 12, false)
    expect(a).toMatchObject({ state: 'done', stepsDone: 10, etaMs: 0 })
    expect(b).toMatchObject({ state: 'current', stepsDone: 2 })
  })
})

describe('passkeyGrid', () => {
  it('lays out the newest passkey evaluation by depth and length', () => {
    const cells = [
      { length: 4096, depth: 0.5, accuracy: 0.5, trials: 2 },
      { length: 1024, depth: 0, accuracy: 1, trials: 2 },
      { length: 1024, depth: 0.5, accuracy: 1, trials: 2 },
    ]
    const evals = [
      evalResult('baseline', -1, 0, {}, { passkey: [{ length: 1024, depth: 0, accuracy: 0, trials: 2 }] }),
      evalResult('stage-end', 0, 10, {}, { passkey: cells }),
      evalResult('interval', 1, 15, {}),
    ]
    const g = passkeyGrid(evals)!
    expect(g.step).toBe(10)
    expect(g.lengths).toEqual([1024, 4096])
    expect(g.depths).toEqual([0, 0.5])
    expect(g.cells[0][0]?.accuracy).toBe(1)
    expect(g.cells[0][1]).toBeNull() // 4096 at depth 0 was not measured
    expect(g.cells[1][1]?.accuracy).toBe(0.5)
    expect(passkeyGrid([evalResult('baseline', -1, 0, {})])).toBeNull()
  })
})

describe('run status', () => {
  it('resumes what is paused, interrupted or stopped, not what runs or ended', () => {
    expect(['paused', 'interrupted', 'stopped'].every((s) => canResume(s as never))).toBe(true)
    expect(['running', 'completed', 'failed'].some((s) => canResume(s as never))).toBe(false)
  })
})

describe('dataset histogram', () => {
  it('scales bars to the tallest, keeps small ones visible and marks long buckets', () => {
    const bars = histogramBars(datasetSummary.stats.lengthHistogram, 'documents', 512)
    expect(bars.map((b) => b.value)).toEqual([10, 0, 1000, 1])
    expect(bars[2].height).toBe(1)
    expect(bars[1].height).toBe(0)
    expect(bars[3].height).toBe(0.02) // 1 of 1000 would be invisible
    expect(bars.map((b) => b.long)).toEqual([false, false, true, true])
    expect(bars[0].share).toBeCloseTo(10 / 1011)
  })

  it('orders the at-least rows by length with their token share', () => {
    const rows = atLeastRows(datasetSummary.stats)
    expect(rows.map((r) => r.context)).toEqual([2048, 4096, 8192, 16384])
    expect(rows[0].tokenShare).toBeCloseTo(0.12)
  })
})

describe('run formats', () => {
  it('says context lengths the way people do', () => {
    expect([256, 1024, 1536, 2048, 8192, 16384].map(formatContext)).toEqual(['256', '1k', '1.5k', '2k', '8k', '16k'])
  })

  it('formats perplexity, signed changes and learning rates', () => {
    expect(formatPpl(11.684)).toBe('11.68')
    expect(formatPpl(412.3)).toBe('412.3')
    expect(formatPpl(12345.6)).toBe('12,346')
    expect(formatPpl(null)).toBe('—')
    expect(formatSignedPercent(0.77)).toBe('+0.8%')
    expect(formatSignedPercent(-3.14)).toBe('-3.1%')
    expect(formatSignedPercent(0.01)).toBe('±0.0%')
    expect(formatLr(0.0003)).toBe('3e-4')
    expect(formatLr(1.5e-5)).toBe('1.5e-5')
    expect(formatLr(0)).toBe('0')
  })
})

describe('formatCompact', () => {
  it('keeps small numbers exact, rounds hundreds, abbreviates thousands', () => {
    expect([0.5, 12.345, 808.62, 4712, -2500000].map(formatCompact)).toEqual(['0.5', '12.35', '809', '4.7K', '-2.5M'])
  })
})

describe('runSourceLabel', () => {
  it('names what a run opens as: final, the checkpoint step, or nothing yet', () => {
    expect(runSourceLabel({ modelSource: { kind: 'model', path: '/data/runs/r1/final' } })).toBe('final')
    expect(
      runSourceLabel({ modelSource: { kind: 'checkpoint', modelDir: '/m', checkpoint: '/data/runs/r1/checkpoints/step-000040.safetensors' } }),
    ).toBe('step 40')
    expect(runSourceLabel({ modelSource: null })).toBeNull()
  })
})
