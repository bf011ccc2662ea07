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

/**
 * Starts components in order. Each one that started is put at the front of
 * `started`, so `started` is always the order to stop them in (the reverse),
 * also when a later start fails and the caller stops what did start.
 */
export async function startAll(components: readonly Component[], started: Component[]): Promise<void> {
  for (const c of components) {
    await c.start()
    started.unshift(c)
  }
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
