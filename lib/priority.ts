// CPU priority of processes that must not outrank others: gateway workers
// below the primary that holds the store, a load generator below the system
// it measures. On Linux a nice value belongs to a thread, and a process has
// threads before its code runs (V8's, libuv's): lowering a child's pid from
// outside lowers only its main thread (and threads it starts later), so the
// child also lowers the threads it already has.
import { readdirSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'
import { logger } from './log.ts'

const log = logger('priority')

/** The nice value `steps` below this process's, within Linux's range. */
export const lowerThanMe = (steps: number): number => Math.min(19, getPriority() + steps)

/** Lowers a child's main thread to `priority`; false (and a warning) where it cannot. */
export function lowerProcess(pid: number | undefined, priority: number, what: string): boolean {
  if (pid === undefined) return false
  try {
    setPriority(pid, priority)
    return true
  } catch (e) {
    log.warn({ err: e, pid, priority }, `could not lower the priority of ${what}; it runs at its parent's`)
    return false
  }
}

/** Every thread of this process to `priority` (a no-op off Linux, where the main thread's priority is all there is). */
export function lowerOwnThreads(priority: number): void {
  if (!Number.isInteger(priority)) return
  let tasks: string[]
  try {
    tasks = readdirSync('/proc/self/task')
  } catch {
    return
  }
  for (const tid of tasks) {
    try {
      setPriority(Number(tid), priority)
    } catch (e) {
      log.debug({ err: e, tid }, 'a thread ended or could not be lowered')
    }
  }
}
