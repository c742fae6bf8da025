// Electron entry: window, menu and lifecycle only. Everything the app does lives in the core
// (src-main/core), reached from the renderer through the IPC transport.
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { app, BrowserWindow, dialog, ipcMain, Menu, shell, type MenuItemConstructorOptions } from 'electron'
import { createCore, type Core } from './core/core.ts'
import { createNativeProbe } from './core/native-probe.ts'
import { registerIpc } from './transports/electron-ipc.ts'

const rendererUrl = process.env.ELECTRON_RENDERER_URL // set by `electron-vite dev`
const rendererFile = join(import.meta.dirname, '../renderer/index.html')
const appPageUrl = rendererUrl ?? pathToFileURL(rendererFile).href

let core: Core | null = null

function isTrustedUrl(url: string): boolean {
  return rendererUrl ? url.startsWith(rendererUrl) : url.split('#')[0] === appPageUrl
}

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 820,
    minWidth: 900,
    minHeight: 600,
    title: 'LongCtx Studio',
    show: false,
    webPreferences: {
      preload: join(import.meta.dirname, '../preload/index.cjs'),
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
      webSecurity: true,
    },
  })
  win.once('ready-to-show', () => win.show())
  // The app never opens other pages inside itself; links go to the system browser.
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (url.startsWith('https://')) void shell.openExternal(url)
    return { action: 'deny' }
  })
  win.webContents.on('will-navigate', (event, url) => {
    if (!isTrustedUrl(url)) event.preventDefault()
  })
  if (rendererUrl) void win.loadURL(rendererUrl)
  else void win.loadFile(rendererFile)
  return win
}

function buildMenu() {
  const template: MenuItemConstructorOptions[] = [
    ...(process.platform === 'darwin' ? [{ role: 'appMenu' as const }] : []),
    { label: 'File', submenu: [{ role: process.platform === 'darwin' ? 'close' : 'quit' }] },
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [{ role: 'reload' }, { role: 'toggleDevTools' }, { type: 'separator' }, { role: 'togglefullscreen' }],
    },
    { role: 'windowMenu' },
  ]
  Menu.setApplicationMenu(Menu.buildFromTemplate(template))
}

app.whenReady().then(async () => {
  core = await createCore({
    mode: 'electron',
    native: createNativeProbe(),
    pickPath: async (args) => {
      const owner = BrowserWindow.getFocusedWindow()
      const options = {
        title: args.title,
        defaultPath: args.defaultPath,
        properties: [args.kind === 'folder' ? ('openDirectory' as const) : ('openFile' as const)],
      }
      const result = owner ? await dialog.showOpenDialog(owner, options) : await dialog.showOpenDialog(options)
      return result.canceled ? null : (result.filePaths[0] ?? null)
    },
  })
  registerIpc({
    core,
    ipcMain,
    isTrustedUrl,
    windows: () => BrowserWindow.getAllWindows().map((w) => w.webContents),
  })
  buildMenu()
  createWindow()
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow()
  })
})

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit()
})

app.on('will-quit', () => {
  void core?.dispose()
})
