// The method and event names alone, with no imports, so the sandboxed preload can expose one
// named function per method without bundling the schemas. contract.ts checks it stays in sync.
export const METHOD_NAMES = [
  'app.info',
  'system.info',
  'system.gpus',
  'settings.get',
  'settings.update',
  'fs.places',
  'fs.list',
  'dialog.pick',
  'models.inspect',
  'datasets.preview',
  'datasets.import',
  'datasets.cancel',
  'datasets.list',
  'datasets.get',
  'runs.defaultPlan',
  'runs.estimate',
  'runs.fit',
  'runs.measure',
  'runs.create',
  'runs.list',
  'runs.get',
  'runs.pause',
  'runs.resume',
  'runs.stop',
  'runs.delete',
  'runs.demo',
  'export.start',
  'export.cancel',
  'export.jobs',
  'chat.load',
  'chat.send',
  'chat.stop',
  'chat.unload',
  'chat.restart',
  'chat.sessions',
  'chat.countTokens',
  'chat.readDocument',
] as const

export const EVENT_NAMES = ['system.gpus', 'settings.changed', 'datasets.progress', 'runs.status', 'runs.metrics', 'runs.eval', 'export.progress', 'chat.token', 'chat.session'] as const

// IPC channel names used by the Electron transport and the preload.
export const IPC_CALL_PREFIX = 'api:'
export const IPC_EVENT_CHANNEL = 'api-event'
