// Methods the renderer can use when the backend it talks to has them. names.ts is the list both
// transports are built from (the Electron preload exposes exactly these functions), and it has no
// imports, so reading it at run time keeps zod out of the bundle. A view whose method a backend
// does not have (the demo, say, in a build without it) hides itself instead of failing on click.
import { METHOD_NAMES } from '../../../src-main/api/names.ts'

export function hasMethod(name: string): boolean {
  return (METHOD_NAMES as readonly string[]).includes(name)
}
