// Icon shapes for AppIcon.vue, drawn for this app on a 24×24 grid as stroke outlines.
export type Shape = [tag: 'path' | 'circle' | 'rect' | 'line' | 'polyline', attrs: Record<string, string | number>]

export const ICONS = {
  runs: [
    ['rect', { x: 4, y: 4, width: 16, height: 6, rx: 1.8 }],
    ['rect', { x: 4, y: 14, width: 16, height: 6, rx: 1.8 }],
    ['path', { d: 'M7.5 7h4M7.5 17h6' }],
  ],
  newRun: [
    ['circle', { cx: 12, cy: 12, r: 8.5 }],
    ['path', { d: 'M12 8v8M8 12h8' }],
  ],
  monitor: [
    ['path', { d: 'M4 4v15.5a.5.5 0 0 0 .5.5H20' }],
    ['polyline', { points: '7.5 15 11 10.5 14 13 19 7' }],
  ],
  chat: [
    ['path', { d: 'M5.5 5h13A1.5 1.5 0 0 1 20 6.5v8a1.5 1.5 0 0 1-1.5 1.5H10.5L6.5 19.5V16h-1A1.5 1.5 0 0 1 4 14.5v-8A1.5 1.5 0 0 1 5.5 5Z' }],
    ['path', { d: 'M8.5 10h7M8.5 12.8h4.5' }],
  ],
  settings: [
    ['path', { d: 'M4 7h9M17 7h3M4 17h3M11 17h9' }],
    ['circle', { cx: 15, cy: 7, r: 2 }],
    ['circle', { cx: 9, cy: 17, r: 2 }],
  ],
  folder: [['path', { d: 'M3.5 7.5A1.5 1.5 0 0 1 5 6h4.2l2 2H19a1.5 1.5 0 0 1 1.5 1.5v8A1.5 1.5 0 0 1 19 19H5a1.5 1.5 0 0 1-1.5-1.5Z' }]],
  file: [
    ['path', { d: 'M7 3.5h6.5L18 8v11a1.5 1.5 0 0 1-1.5 1.5h-9A1.5 1.5 0 0 1 6 19V5a1.5 1.5 0 0 1 1-1.5Z' }],
    ['path', { d: 'M13.5 3.5V8H18' }],
  ],
  up: [['path', { d: 'M12 19V5M6.5 10.5 12 5l5.5 5.5' }]],
  chevronRight: [['path', { d: 'm9.5 6 6 6-6 6' }]],
  chevronLeft: [['path', { d: 'm14.5 6-6 6 6 6' }]],
  close: [['path', { d: 'M6.5 6.5l11 11M17.5 6.5l-11 11' }]],
  alert: [
    ['path', { d: 'M10.7 4.6a1.5 1.5 0 0 1 2.6 0l7.4 13.1A1.5 1.5 0 0 1 19.4 20H4.6a1.5 1.5 0 0 1-1.3-2.3Z' }],
    ['path', { d: 'M12 9.5v4M12 16.6v.01' }],
  ],
  info: [
    ['circle', { cx: 12, cy: 12, r: 8.5 }],
    ['path', { d: 'M12 11v5M12 8v.01' }],
  ],
  check: [['path', { d: 'm5 12.5 4.5 4.5L19 7.5' }]],
  checkCircle: [
    ['circle', { cx: 12, cy: 12, r: 8.5 }],
    ['path', { d: 'm8.3 12.3 2.5 2.5 5-5' }],
  ],
  refresh: [
    ['path', { d: 'M19.5 12a7.5 7.5 0 1 1-2.2-5.3' }],
    ['path', { d: 'M19.5 4.5v4h-4' }],
  ],
  cpu: [
    ['rect', { x: 6.5, y: 6.5, width: 11, height: 11, rx: 1.5 }],
    ['rect', { x: 9.5, y: 9.5, width: 5, height: 5, rx: 0.5 }],
    ['path', { d: 'M9.5 3.5v3M14.5 3.5v3M9.5 17.5v3M14.5 17.5v3M3.5 9.5h3M3.5 14.5h3M17.5 9.5h3M17.5 14.5h3' }],
  ],
  gpu: [
    ['rect', { x: 3, y: 6.5, width: 18, height: 11, rx: 1.5 }],
    ['circle', { cx: 9, cy: 12, r: 3 }],
    ['path', { d: 'M15 10h3M15 14h3M6 17.5v2M10 17.5v2M14 17.5v2' }],
  ],
  memory: [
    ['rect', { x: 3.5, y: 7, width: 17, height: 9, rx: 1.2 }],
    ['path', { d: 'M7 10v3M10.3 10v3M13.6 10v3M17 10v3M6 16v2.5M18 16v2.5' }],
  ],
  disk: [
    ['rect', { x: 3.5, y: 5.5, width: 17, height: 13, rx: 2 }],
    ['path', { d: 'M3.5 13.5h17' }],
    ['circle', { cx: 16.5, cy: 16, r: 0.6 }],
  ],
  os: [
    ['rect', { x: 3.5, y: 4.5, width: 17, height: 12, rx: 1.5 }],
    ['path', { d: 'M9 20h6M12 16.5V20' }],
  ],
  engine: [
    ['path', { d: 'M13 3.5 5.5 13.5H12l-1 7 7.5-10H12Z' }],
  ],
  home: [['path', { d: 'M4 11 12 4.5l8 6.5v8.5a.5.5 0 0 1-.5.5H15v-6H9v6H4.5a.5.5 0 0 1-.5-.5Z' }]],
  database: [
    ['path', { d: 'M5 6.5c0-1.7 3.1-3 7-3s7 1.3 7 3-3.1 3-7 3-7-1.3-7-3Z' }],
    ['path', { d: 'M5 6.5v11c0 1.7 3.1 3 7 3s7-1.3 7-3v-11M5 12c0 1.7 3.1 3 7 3s7-1.3 7-3' }],
  ],
  drive: [
    ['path', { d: 'M4 14.5 6.3 6a1.5 1.5 0 0 1 1.4-1h8.6a1.5 1.5 0 0 1 1.4 1L20 14.5' }],
    ['rect', { x: 4, y: 14.5, width: 16, height: 5, rx: 1.5 }],
    ['path', { d: 'M16.5 17v.01' }],
  ],
  eye: [
    ['path', { d: 'M2.5 12S6 5.5 12 5.5 21.5 12 21.5 12 18 18.5 12 18.5 2.5 12 2.5 12Z' }],
    ['circle', { cx: 12, cy: 12, r: 3 }],
  ],
  eyeOff: [
    ['path', { d: 'M9.9 5.8A9.5 9.5 0 0 1 12 5.5c6 0 9.5 6.5 9.5 6.5a16.7 16.7 0 0 1-2.6 3.4M6.6 6.9C3.9 8.6 2.5 12 2.5 12S6 18.5 12 18.5a9 9 0 0 0 4.6-1.3' }],
    ['path', { d: 'M9.9 9.9a3 3 0 0 0 4.2 4.2M4 4l16 16' }],
  ],
  cube: [
    ['path', { d: 'M12 3.5 19.5 7.7v8.6L12 20.5l-7.5-4.2V7.7Z' }],
    ['path', { d: 'M4.5 7.7 12 12l7.5-4.3M12 12v8.5' }],
  ],
  plan: [
    ['rect', { x: 5, y: 4.5, width: 14, height: 16, rx: 1.5 }],
    ['path', { d: 'M9 3.5h6v2.5H9zM8.5 11h7M8.5 14.5h7M8.5 18h4' }],
  ],
  plug: [
    ['path', { d: 'M9 3.5v4M15 3.5v4M7 7.5h10v3a5 5 0 0 1-10 0ZM12 15.5v5' }],
  ],
  external: [['path', { d: 'M13.5 4.5h6v6M19.5 4.5l-8 8M17.5 14v4.5a1 1 0 0 1-1 1h-11a1 1 0 0 1-1-1v-11a1 1 0 0 1 1-1H10' }]],
} satisfies Record<string, Shape[]>

export type IconName = keyof typeof ICONS
