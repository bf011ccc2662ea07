// The one component contract (CONVENTIONS.md): every long-lived stage starts,
// stops by draining and flushing under a deadline, reports counters, and may
// answer a health check.

export interface ComponentStats {
  readonly [counter: string]: number | string | boolean | ComponentStats
}

export interface Health {
  ok: boolean
  detail?: string
}

export interface Component {
  readonly name: string
  start(): Promise<void>
  /** Drain and flush; `deadline` is an absolute epoch-ms time by which to be done. */
  stop(deadline: number): Promise<void>
  stats(): ComponentStats
  health?(): Promise<Health>
}

/** Epoch-ms deadline `ms` from now. */
export function deadlineIn(ms: number, now: number = Date.now()): number {
  return now + ms
}

/** Milliseconds left before `deadline`, never negative. */
export function remaining(deadline: number, now: number = Date.now()): number {
  return Math.max(0, deadline - now)
}

/**
 * Stop components in order (sources first, sinks last) under one deadline.
 * A component that fails to stop is reported, and the rest still stop.
 */
export async function stopAll(components: readonly Component[], deadline: number): Promise<{ name: string; error: unknown }[]> {
  const failures: { name: string; error: unknown }[] = []
  for (const c of components) {
    try {
      await c.stop(deadline)
    } catch (error) {
      failures.push({ name: c.name, error })
    }
  }
  return failures
}
