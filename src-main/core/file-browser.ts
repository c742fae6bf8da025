// The server-side half of the web-mode file picker: list a folder of the machine the core runs
// on. Only what the OS lets this user read is shown; anything else is a clear error.
import { readdir, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join, parse, resolve } from 'node:path'
import { ApiError, type FsEntry, type FsListing, type FsPlaces } from '../api/contract.ts'

export async function listFolder(path: string, showHidden: boolean): Promise<FsListing> {
  const folder = resolve(path)
  let info
  try {
    info = await stat(folder)
  } catch (err) {
    throw fsError(folder, err)
  }
  if (!info.isDirectory()) {
    throw new ApiError('invalid_argument', `"${folder}" is a file, not a folder.`)
  }
  let names
  try {
    names = await readdir(folder, { withFileTypes: true })
  } catch (err) {
    throw fsError(folder, err)
  }
  const entries: FsEntry[] = []
  for (const d of names) {
    const hidden = d.name.startsWith('.')
    if (hidden && !showHidden) continue
    const full = join(folder, d.name)
    // stat follows symlinks so a link to a folder is browsable; broken links are skipped.
    const s = await stat(full).catch(() => null)
    if (!s || !(s.isDirectory() || s.isFile())) continue
    entries.push({
      name: d.name,
      path: full,
      kind: s.isDirectory() ? 'dir' : 'file',
      sizeBytes: s.isFile() ? s.size : 0,
      modifiedMs: Math.round(s.mtimeMs),
      hidden,
    })
  }
  entries.sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'dir' ? -1 : 1))
  const root = parse(folder).root
  return { path: folder, parent: folder === root ? null : dirname(folder), entries }
}

export function places(dataDir: string): FsPlaces {
  const roots = process.platform === 'win32' ? ['C:\\'] : ['/']
  return { home: homedir(), dataDir, roots }
}

function fsError(path: string, err: unknown): ApiError {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return new ApiError('not_found', `"${path}" does not exist.`)
  if (code === 'EACCES' || code === 'EPERM')
    return new ApiError('permission', `The app is not allowed to read "${path}". Choose another folder or fix its permissions.`)
  if (code === 'ENOTDIR') return new ApiError('invalid_argument', `"${path}" is not a folder.`)
  return new ApiError('internal', `Cannot read "${path}": ${(err as Error).message}`)
}
