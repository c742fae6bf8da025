// The addon's slow calls run off the main thread, in order, one at a time per model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EngineModel } from '../../src-main/engine/model.ts'
import { lmBatch, randomIds, tinyModel } from '../helpers/engine.ts'

describe('engine: async calls', () => {
  // Big enough that one forward+backward of 128 tokens takes on the order of a second on two
  // shared cores (a blocked event loop would then stall for that long).
  const cfg = { vocabSize: 2048, nPositions: 256, nEmbd: 256, nLayer: 4, nHead: 4 }
  let model: EngineModel
  beforeAll(async () => {
    model = await EngineModel.create(cfg, 3)
    await model.trainInit({})
  })
  afterAll(() => model?.dispose())

  it('forwardBackward never blocks the event loop', async () => {
    const batch = lmBatch(randomIds(128, cfg.vocabSize, 5), 1, 128)
    const ticks: number[] = []
    const timer = setInterval(() => ticks.push(performance.now()), 5)
    const started = performance.now()
    try {
      // Steps back to back until the work is long enough to mean something (on a quiet machine
      // two steps once took 199 ms): the loop must keep turning during all of them.
      do await model.forwardBackward(batch)
      while (performance.now() - started < 400)
    } finally {
      clearInterval(timer)
    }
    const elapsed = performance.now() - started
    let maxGap = 0
    for (let i = 1; i < ticks.length; i++) maxGap = Math.max(maxGap, ticks[i]! - ticks[i - 1]!)
    // The call itself must have been slow for the test to mean anything.
    expect(elapsed).toBeGreaterThan(200)
    // A blocked loop would show one gap as long as the whole call.
    expect(maxGap).toBeLessThan(Math.max(150, elapsed / 4))
    expect(ticks.length).toBeGreaterThan(elapsed / 5 / 10)
  })

  it('runs calls of one model in submission order, without awaiting in between', async () => {
    const m = await tinyModel(7)
    try {
      await m.trainInit({})
      const batch = lmBatch(randomIds(2 * 16, 96, 9), 2, 16)
      const order: string[] = []
      const before = await m.getParams()
      // Not awaited: the queue must still run zeroGrad -> fb -> step -> getParams in order.
      const calls = [
        m.zeroGrad().then(() => order.push('zero')),
        m.forwardBackward(batch).then(() => order.push('fb')),
        m.optimizerStep(1e-2).then(() => order.push('step')),
        m.getParams().then((p) => {
          order.push('params')
          return p
        }),
      ]
      const results = await Promise.all(calls)
      expect(order).toEqual(['zero', 'fb', 'step', 'params'])
      const after = results[3] as Float32Array
      expect(Buffer.from(after.buffer).equals(Buffer.from(before.buffer))).toBe(false)
      expect(m.optimizerSteps).toBe(1)
    } finally {
      m.dispose()
    }
  })

  it('copies typed arrays before the call runs', async () => {
    const m = await tinyModel(8)
    try {
      const batch = lmBatch(randomIds(16, 96, 11), 1, 16)
      const expected = (await m.forward(batch, { nll: true })).nll!
      const tokens = batch.tokens.slice()
      const pending = m.forward({ ...batch, tokens }, { nll: true })
      tokens.fill(0) // mutate after the call was made
      const got = (await pending).nll!
      expect(Buffer.from(got.buffer).equals(Buffer.from(expected.buffer))).toBe(true)
    } finally {
      m.dispose()
    }
  })
})
