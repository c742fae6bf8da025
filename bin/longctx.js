#!/usr/bin/env node
// `longctx` launcher: the CLI is TypeScript (src-main/cli), run through tsx's loader so the
// checkout needs no build step (`npx longctx ...` works right after `npm install`).
import { register } from 'tsx/esm/api'

register()
const { main } = await import(new URL('../src-main/cli/index.ts', import.meta.url).href)
process.exitCode = await main(process.argv)
