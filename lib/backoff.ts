// Exponential backoff with full jitter (AWS architecture blog's "full jitter"),
// capped, so many clients retrying after one outage do not retry in lockstep.

export interface BackoffOptions {
  initialMs: number
  maxMs: number
  /** Random source in [0, 1); injectable so tests are deterministic. */
  random?: () => number
}

export function backoffDelayMs(attempt: number, { initialMs, maxMs, random = Math.random }: BackoffOptions): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt))
  return Math.round(ceiling * (0.5 + random() / 2))
}

/** Resolves at `deadline` (epoch ms), at once if it has passed; its timer never keeps the process alive. For Promise.race with work a stop waits for. */
export function atDeadline(deadline: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref())
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const t = setTimeout(done, ms)
    function done(): void {
      clearTimeout(t)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}
