// What a long-running process does with a promise nobody awaited that
// failed. Node's default is to exit, which would let one request's or one
// device's fault stop the gateway, the store, the twin and the rules with
// it. Such a rejection belongs to one operation: it is logged with its
// error and counted, and the process carries on. A synchronous uncaught
// exception is left to Node's default (exit, and the supervisor restarts
// the process): after one, the process' state may really be unsafe.
import { logger } from './log.ts'
import { counter } from './metrics.ts'

const log = logger('process')
const unhandled = counter('citytwin_unhandled_rejections_total', 'Failed promises nobody handled (logged; the process carries on)', [])

let installed = false

export function guardUnhandledRejections(): void {
  if (installed) return
  installed = true
  process.on('unhandledRejection', (reason) => {
    unhandled.inc()
    log.error({ err: reason }, 'a failed promise was not handled; the process carries on')
  })
}
