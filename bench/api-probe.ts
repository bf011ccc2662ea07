// The API as an operator sees it during a benchmark: a small process of its
// own asks for each path every `everyMs` and reports how long each answer
// took. Four times a second by default: a p99 over a two-minute window is
// then the fifth-longest of 480 answers, not the second of 120. In the benchmark's own process the figure also held that process's
// waits (its simulator bookkeeping, its scrapes), which are not the API's.
//
// A prober on the system's own saturated cores also waits for a CPU itself,
// twice an answer (to send, and to read the answer), which an operator's
// browser on a machine of its own does not. So a benchmark may run a second
// prober raised above everything (`raise`): where the two differ, the
// difference is the prober's own wait, not the API's (docs/benchmarks.md,
// 2026-12-03).
import { spawn } from 'node:child_process'
import { setPriority } from 'node:os'
import { createInterface } from 'node:readline'

/** Plain JavaScript, so the prober starts without a loader and costs next to nothing. */
const SCRIPT = `
const [api, everyMs, ...paths] = process.argv.slice(1)
let going = true
process.stdin.on('end', () => { going = false })
process.stdin.resume()
;(async () => {
  while (going) {
    for (const path of paths) {
      const t0 = performance.now()
      const ok = await fetch(api + path, { signal: AbortSignal.timeout(10000) }).then(async (r) => { await r.arrayBuffer(); return r.ok }, () => false)
      process.stdout.write(JSON.stringify({ path, ms: performance.now() - t0, ok }) + '\\n')
    }
    await new Promise((r) => setTimeout(r, Number(everyMs)))
  }
})()
`

export interface ApiProbe {
  /** Stops asking and resolves once the prober has exited. */
  stop(): Promise<void>
  /** Why the prober could not be raised as asked (it then asks at its own nice); undefined when it was, or was not asked to be. */
  readonly notRaised: string | undefined
}

export interface ApiProbeOptions {
  /** How often each path is asked, ms (default 250). */
  everyMs?: number
  /** Run the prober at this nice (negative: above the system; needs root or CAP_SYS_NICE). */
  raise?: number
}

/** Asks `api` + each of `paths` every `everyMs` from a process of its own; `onSample` hears each answer. */
export function startApiProbe(api: string, paths: readonly string[], onSample: (path: string, ms: number, ok: boolean) => void, o: ApiProbeOptions = {}): ApiProbe {
  const child = spawn(process.execPath, ['-e', SCRIPT, api, String(o.everyMs ?? 250), ...paths], { stdio: ['pipe', 'pipe', 'inherit'] })
  let notRaised: string | undefined
  if (o.raise !== undefined) {
    try {
      // Its main thread, which does all its work, before it has started asking.
      setPriority(child.pid ?? 0, o.raise)
    } catch (e) {
      notRaised = `could not set nice ${o.raise} (${(e as NodeJS.ErrnoException).code ?? String(e)}: raising needs root or CAP_SYS_NICE)`
    }
  }
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      const s = JSON.parse(line) as { path: string; ms: number; ok: boolean }
      onSample(s.path, s.ms, s.ok)
    } catch {
      // Not a sample: nothing to count.
    }
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return {
    notRaised,
    stop: async () => {
      child.stdin.end()
      const cut = setTimeout(() => child.kill(), 15_000)
      await exited
      clearTimeout(cut)
    },
  }
}
