// Memory estimate per stage, and `fit`: how much memory the engine will allocate to train a stage,
// against what the selected device has free.
//
// The formula follows the engine's own allocations (native/engine/src/cpu/cpu_backend.cpp and
// native/engine/src/cuda/cuda_backend.cpp), so it is an accounting, not a fit to measurements.
// Notation: P parameters of the stage's model (the position table has `context` rows), L layers,
// C width, F = n_inner, H heads, V vocabulary, N = microBatch x context tokens per forward.
//
// CUDA backend (bf16 compute, fp32 master weights by default):
//   weights     fp32 master: 4P, plus a bf16 copy of wte (2VC) and one layer's bf16 matrices
//               (2 x (4C^2 + 2CF + 3C + F)) staged right before the layer runs;
//               bf16 master (masterDtype 'bf16'): 2P and nothing else.
//   gradients   4P (fp32); with bf16 gradients of the layer matrices (gradDtype 'bf16', see
//               stageGradDtype: steps of one micro-batch) 4P - 2M, M = L (4C^2 + 2CF) the
//               qkv, attention-projection, fc and fc-projection weights
//   optimizer   8P (AdamW m and v, fp32)
//   activations residual stream entering every layer and the output: (L+1) x 4NC;
//               per layer kept for the backward (all L layers, or ONE when recompute is on):
//                 ln1 2NC + qkv 6NC + residual after attention 4NC + ln2 2NC + fc 2NF
//                 + gelu 2NF + LayerNorm stats 16N;
//               attention output and its log-sum-exp for every layer even with recompute
//               (the attention forward is never redone): L x (2NC + 4NH);
//               final LayerNorm 2NC + 8N, per-token NLL 4N;
//               gradient buffers: 4NC + 2NC + 2N max(F,C) + 6NC + 4NH.
//   workspace   the chunked classifier: 512 rows of logits (fp32) and their gradient (bf16),
//               6 x 512 x V; with recompute the classifier's buffers and the bf16 wte share
//               one arena with the one kept layer and the (N, max(F,C)) and qkv gradient
//               buffers, which are free while it runs: max of the two sets, not their sum
//               (and no persistent wte copy; the engine then grows the chunk to what the
//               layer set leaves room for, so the max stays the same); cuBLASLt's workspace (32 MiB); the batch (tokens, positions,
//               targets, embedding-gradient buckets: ~40N with the allocator's slack);
//               attention plans (a few MiB); with passkey evaluation on, generation's bf16
//               weight copy (2P) and its K/V caches (4 L context C).
//   Not counted: the CUDA context (~0.5 GiB, outside the engine's allocator): it is taken off
//   the GPU's free memory instead (CUDA_CONTEXT_BYTES).
//
// CPU backend (fp32 everything, what CpuBackend allocates):
//   weights 4P, gradients 4P, optimizer 8P;
//   activations 4 x (NC + L N (8C + 2F + H + 4) + N (C + 2)) for the forward kept for the
//               backward, plus 4 x N (5C + F) of activation gradients;
//   workspace   the classifier chunk: 4 x rows x (V + 2C) with rows = clamp(4M / V, 8, 1024),
//               positions 8N; with passkey evaluation on, the generator's K/V caches
//               (8 L context C).
//   Not counted: the worker's own memory beside the engine (Node, and the host copies of
//   params + m + v a checkpoint save makes, 12P): taken off the free RAM instead.
//
// Evaluation runs with rows x window <= N, so its forward reuses the training activations.
// The verdict compares the total with the free memory: above it "does-not-fit", above
// TIGHT_FRACTION of it "tight" (fragmentation, other programs), else "fits".
import type { FitVerdict, MemoryEstimate, RunPlan, StageMemoryEstimate, StagePlan } from '../../api/runs.ts'

export interface ModelShape {
  vocabSize: number
  nEmbd: number
  nLayer: number
  nHead: number
  nInner: number
}

export interface DeviceMemory {
  backend: 'cpu' | 'cuda'
  name: string
  freeBytes: number // as the OS / NVML report it
}

// The constants of the formula, named so they can be tuned against measurements.
export const MEMORY_CONSTANTS = {
  TIGHT_FRACTION: 0.85,
  CUDA_CLASSIFIER_ROWS: 512,
  CUDA_CUBLASLT_WORKSPACE_BYTES: 32 * 2 ** 20,
  CUDA_BATCH_BYTES_PER_TOKEN: 40,
  CUDA_ATTENTION_PLAN_BYTES: 8 * 2 ** 20,
  CUDA_CONTEXT_BYTES: 512 * 2 ** 20,
  CPU_CLASSIFIER_TARGET_FLOATS: 4 * 2 ** 20,
  CPU_PROCESS_BYTES: 256 * 2 ** 20,
} as const

// Parameters of a GPT-2 with `positions` position rows, in the engine's canonical layout
// (tied lm_head counted once).
export function parameterCount(m: ModelShape, positions: number): number {
  const C = m.nEmbd
  const F = m.nInner
  const perLayer = 2 * C + 3 * C * C + 3 * C + C * C + C + 2 * C + F * C + F + F * C + C
  return m.vocabSize * C + positions * C + m.nLayer * perLayer + 2 * C
}

export interface StageMemoryInput {
  context: number
  microBatch: number
  recompute: boolean
  masterDtype: 'fp32' | 'bf16'
  gradDtype: 'fp32' | 'bf16'
  passkey: boolean
}

// The gradient dtype a stage trains with (the worker's trainConfig passes it to trainInit): the
// layer matrices' gradients in bf16 when a step is one micro-batch, so each is rounded to bf16
// once; fp32 when micro-batches accumulate, where bf16 would round the running sum after every
// micro-batch. The CPU backend ignores it (fp32 gradients).
export function stageGradDtype(s: Pick<StagePlan, 'tokensPerStep' | 'microBatch' | 'context'>): 'fp32' | 'bf16' {
  return s.tokensPerStep === s.microBatch * s.context ? 'bf16' : 'fp32'
}

export type MemoryBreakdown = Pick<
  StageMemoryEstimate,
  'weightsBytes' | 'optimizerBytes' | 'gradientsBytes' | 'activationsBytes' | 'workspaceBytes' | 'totalBytes'
>

export function stageMemory(m: ModelShape, s: StageMemoryInput, backend: 'cpu' | 'cuda'): MemoryBreakdown {
  const K = MEMORY_CONSTANTS
  const P = parameterCount(m, s.context)
  const { nEmbd: C, nInner: F, nHead: H, nLayer: L, vocabSize: V } = m
  const N = s.microBatch * s.context
  let weights: number, activations: number, workspace: number
  if (backend === 'cuda') {
    const round8 = (x: number) => Math.ceil(x / 8) * 8
    const layerStaging = 2 * (round8(3 * C * C) + round8(3 * C) + round8(C * C) + round8(F * C) + round8(F) + round8(F * C))
    const kept = s.recompute ? 1 : L
    const perLayer = N * C * (2 + 6 + 4 + 2) + N * F * (2 + 2) + 16 * N
    const rows = Math.min(N, K.CUDA_CLASSIFIER_ROWS)
    const classifier = 6 * rows * round8(V)
    const wteCopy = s.masterDtype === 'bf16' ? 0 : 2 * V * C
    const sharedGradients = 2 * N * Math.max(F, C) + 6 * N * C
    // With recompute: one arena for {the kept layer, the shared gradients} and {classifier, wte copy}.
    const arena = s.recompute ? Math.max(perLayer + sharedGradients, classifier + wteCopy) : 0
    weights = s.masterDtype === 'bf16' ? 2 * P : 4 * P + (s.recompute ? 0 : wteCopy) + layerStaging
    activations =
      (L + 1) * 4 * N * C +
      (s.recompute ? arena : kept * perLayer + sharedGradients) +
      L * (2 * N * C + 4 * N * H) +
      2 * N * C + 8 * N + 4 * N +
      (4 * N * C + 2 * N * C + 4 * N * H)
    workspace =
      (s.recompute ? 0 : classifier) +
      K.CUDA_CUBLASLT_WORKSPACE_BYTES +
      K.CUDA_BATCH_BYTES_PER_TOKEN * N +
      K.CUDA_ATTENTION_PLAN_BYTES +
      (s.passkey ? (s.masterDtype === 'bf16' ? 0 : 2 * P) + 4 * L * s.context * C : 0)
  } else {
    weights = 4 * P
    activations = 4 * (N * C + L * N * (8 * C + 2 * F + H + 4) + N * (C + 2)) + 4 * N * (5 * C + F)
    const rows = Math.min(Math.min(1024, Math.max(8, Math.floor(K.CPU_CLASSIFIER_TARGET_FLOATS / V))), N)
    workspace = 4 * rows * (V + 2 * C) + 8 * N + (s.passkey ? 8 * L * s.context * C : 0)
  }
  const matrices = L * (4 * C * C + 2 * C * F)
  const gradients = backend === 'cuda' && s.gradDtype === 'bf16' ? 4 * P - 2 * matrices : 4 * P
  const optimizer = 8 * P
  return {
    weightsBytes: weights,
    optimizerBytes: optimizer,
    gradientsBytes: gradients,
    activationsBytes: activations,
    workspaceBytes: workspace,
    totalBytes: weights + optimizer + gradients + activations + workspace,
  }
}

// Free memory the engine can use: the device's free memory less what the worker needs beside
// the engine (see the top of the file).
export function usableBytes(device: DeviceMemory, m: ModelShape, maxContext: number): number {
  const K = MEMORY_CONSTANTS
  if (device.backend === 'cuda') return Math.max(0, device.freeBytes - K.CUDA_CONTEXT_BYTES)
  return Math.max(0, device.freeBytes - K.CPU_PROCESS_BYTES - 12 * parameterCount(m, maxContext))
}

export function verdictFor(totalBytes: number, availableBytes: number): FitVerdict {
  if (totalBytes > availableBytes) return 'does-not-fit'
  if (totalBytes > MEMORY_CONSTANTS.TIGHT_FRACTION * availableBytes) return 'tight'
  return 'fits'
}

function stageInput(plan: RunPlan, s: StagePlan): StageMemoryInput {
  return {
    context: s.context,
    microBatch: s.microBatch,
    recompute: s.recompute,
    masterDtype: plan.optimizer.masterDtype,
    gradDtype: stageGradDtype(s),
    passkey: plan.eval.passkey !== null,
  }
}

export function estimatePlanMemory(plan: RunPlan, m: ModelShape, device: DeviceMemory): MemoryEstimate {
  const maxContext = Math.max(...plan.stages.map((s) => s.context))
  const available = usableBytes(device, m, maxContext)
  return {
    device: device.name,
    backend: device.backend,
    stages: plan.stages.map((s) => {
      const b = stageMemory(m, stageInput(plan, s), device.backend)
      return { stage: s.name, context: s.context, ...b, availableBytes: available, verdict: verdictFor(b.totalBytes, available) }
    }),
  }
}

export class NothingFitsError extends Error {
  override name = 'NothingFitsError'
}

// A plan whose every stage fits: per stage, the largest micro-batch (halving, the tokens per step
// kept through more accumulation) without recompute, then with recompute; "tight" only when
// nothing "fits"; on CUDA bf16 master weights as a last resort. Throws NothingFitsError saying
// what the smallest configuration needs when even micro-batch 1 with recompute does not fit.
export function fitPlan(plan: RunPlan, m: ModelShape, device: DeviceMemory): RunPlan {
  const maxContext = Math.max(...plan.stages.map((s) => s.context))
  const available = usableBytes(device, m, maxContext)
  const masters: Array<'fp32' | 'bf16'> =
    device.backend === 'cuda' && plan.optimizer.masterDtype === 'fp32' ? ['fp32', 'bf16'] : [plan.optimizer.masterDtype]

  // "fits" everywhere with fp32 masters, then with bf16 masters, before settling for "tight".
  for (const accept of [['fits'], ['fits', 'tight']] as FitVerdict[][]) {
    for (const master of masters) {
      const stages = fitStages(plan, m, device.backend, master, available, accept)
      if (!stages) continue
      const notes: string[] = []
      stages.forEach((s, i) => {
        const was = plan.stages[i]!
        if (s.microBatch !== was.microBatch || s.recompute !== was.recompute)
          notes.push(
            `Stage ${s.name}: micro-batch ${was.microBatch} -> ${s.microBatch}` +
              (s.recompute !== was.recompute ? ', activation recompute on' : '') +
              ` to fit ${device.name} (tokens per step unchanged: ${s.tokensPerStep / (s.microBatch * s.context)} accumulated micro-batches).`,
          )
      })
      if (master !== plan.optimizer.masterDtype)
        notes.push('Master weights in bf16 (stochastic rounding) to save 2 bytes per parameter: nothing fitted with fp32 master weights.')
      const kept = (plan.notes ?? []).filter((n) => !n.includes(' to fit ') && !n.startsWith('Master weights in bf16'))
      const fitted: RunPlan = { ...plan, optimizer: { ...plan.optimizer, masterDtype: master }, stages }
      delete fitted.notes
      if (kept.length + notes.length) fitted.notes = [...kept, ...notes]
      return fitted
    }
  }

  // Nothing fits: say what the leanest configuration of the worst stage needs.
  const worst = plan.stages.reduce((a, b) => (a.context >= b.context ? a : b))
  const leanest = stageMemory(
    m,
    {
      context: worst.context,
      microBatch: 1,
      recompute: true,
      masterDtype: masters[masters.length - 1]!,
      gradDtype: stageGradDtype({ ...worst, microBatch: 1 }),
      passkey: plan.eval.passkey !== null,
    },
    device.backend,
  )
  throw new NothingFitsError(
    `Stage ${worst.name} needs ${gib(leanest.totalBytes)} even with micro-batch 1 and activation recompute ` +
      `(weights ${gib(leanest.weightsBytes)}, optimizer ${gib(leanest.optimizerBytes)}, gradients ${gib(leanest.gradientsBytes)}, ` +
      `activations ${gib(leanest.activationsBytes)}, workspace ${gib(leanest.workspaceBytes)}), but ${device.name} has ` +
      `${gib(available)} free for it. Use a device with more memory, a shorter target context` +
      (device.backend === 'cuda' ? ', or close other programs using the GPU.' : ', or close other programs.'),
  )
}

// Per stage, the first configuration whose verdict is accepted: micro-batches from the plan's
// down to 1 (those that divide the rows per step), without recompute first. Null if a stage has none.
function fitStages(
  plan: RunPlan,
  m: ModelShape,
  backend: 'cpu' | 'cuda',
  master: 'fp32' | 'bf16',
  available: number,
  accept: FitVerdict[],
): StagePlan[] | null {
  const out: StagePlan[] = []
  for (const s of plan.stages) {
    const rowsPerStep = s.tokensPerStep / s.context
    let pick: StagePlan | null = null
    for (const recompute of s.recompute ? [true] : [false, true]) {
      for (let mb = s.microBatch; mb >= 1 && !pick; mb = mb === 1 ? 0 : Math.floor(mb / 2)) {
        if (rowsPerStep % mb !== 0) continue
        const gradDtype = stageGradDtype({ ...s, microBatch: mb })
        const total = stageMemory(m, { context: s.context, microBatch: mb, recompute, masterDtype: master, gradDtype, passkey: plan.eval.passkey !== null }, backend).totalBytes
        if (accept.includes(verdictFor(total, available))) pick = { ...s, microBatch: mb, recompute }
      }
      if (pick) break
    }
    if (!pick) return null
    out.push(pick)
  }
  return out
}

export function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 2 : 1)} GiB`
}
