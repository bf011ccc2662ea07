#!/usr/bin/env node
// The `citytwin` command. The sources are TypeScript run through tsx's
// loader, so there is no build step between a clone and a running system.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../app/main.ts')
const code = await main(process.argv.slice(2))
// Let pino flush, then leave with the command's status; long-running
// commands (start) return only after a graceful stop.
process.exitCode = code
