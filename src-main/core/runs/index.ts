// Staged runs: the default plan, memory and time estimates, run folders and the supervision of
// the training worker (src-main/worker). See DESIGN.md, "Context extension".
export { RunService, summarize, downsample, factsOf, pplOf, type RunServiceOptions, type RunEmitter } from './service.ts'
export { buildDefaultPlan, stageContexts, contextLabel, totalSteps, targetContext, type ModelFacts, type DatasetFacts } from './plan.ts'
export { stageMemory, estimatePlanMemory, fitPlan, parameterCount, MEMORY_CONSTANTS, NothingFitsError, type ModelShape, type DeviceMemory } from './memory.ts'
export { learningRateAt } from './schedule.ts'
export { demoPlan, demoPaths, findResourcesDir } from './demo.ts'
export * from './store.ts'
