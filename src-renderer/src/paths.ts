// Path helpers for the in-app file browser. The browser may run on a different OS than the
// server it talks to (web mode over an SSH tunnel), so nothing here may use the page's platform:
// the separator is read from the path itself.

export interface PathCrumb {
  label: string
  path: string
}

/** True for "C:\..." and "\\server\share\..." style paths. */
export function isWindowsPath(path: string): boolean {
  return /^[a-zA-Z]:[\\/]/.test(path) || path.startsWith('\\\\')
}

/**
 * Breadcrumb segments of an absolute path, each with the full path up to it.
 *   /home/ann/models      → "/", "home", "ann", "models"
 *   C:\Users\Ann          → "C:\", "Users", "Ann"
 *   \\nas\share\models    → "\\nas\share\", "models"
 */
export function pathCrumbs(path: string): PathCrumb[] {
  if (!path) return []
  if (isWindowsPath(path)) {
    const norm = path.replace(/\//g, '\\')
    let root: string
    let rest: string
    if (norm.startsWith('\\\\')) {
      const parts = norm.slice(2).split('\\')
      root = `\\\\${parts[0] ?? ''}\\${parts[1] ?? ''}\\`
      rest = parts.slice(2).join('\\')
    } else {
      root = norm.slice(0, 3)
      rest = norm.slice(3)
    }
    const crumbs: PathCrumb[] = [{ label: root, path: root }]
    let acc = root
    for (const part of rest.split('\\').filter(Boolean)) {
      acc = acc.endsWith('\\') ? acc + part : acc + '\\' + part
      crumbs.push({ label: part, path: acc })
    }
    return crumbs
  }
  const crumbs: PathCrumb[] = [{ label: '/', path: '/' }]
  let acc = ''
  for (const part of path.split('/').filter(Boolean)) {
    acc += '/' + part
    crumbs.push({ label: part, path: acc })
  }
  return crumbs
}

/** Last segment of a path, for compact labels ("…/gpt2-medium" → "gpt2-medium"). */
export function baseName(path: string): string {
  const trimmed = path.replace(/[\\/]+$/, '')
  if (!trimmed) return path // a root ("/") names itself
  const i = Math.max(trimmed.lastIndexOf('/'), trimmed.lastIndexOf('\\'))
  return i >= 0 ? trimmed.slice(i + 1) || trimmed : trimmed
}
