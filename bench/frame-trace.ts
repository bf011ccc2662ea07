// Where a slow frame's time went, read from a Chromium trace (the Trace
// Event Format: https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU).
// bench:viewer --trace marks each measured frame with a user-timing measure
// named `frame:<step>:<index>`; for each frame this sums, per thread of
// interest, the wall time its tasks ran, the part of it they were on a CPU
// (a task's thread time), and the events inside them by name. A frame that
// waited while its threads were runnable but not running (two vCPUs shared
// with the load) shows as wall time without thread time.

export interface TraceEvent {
  pid: number
  tid: number
  ts: number // µs
  dur?: number // µs, complete events
  tdur?: number // µs of thread CPU time, complete events
  ph: string
  name: string
  cat: string
  id?: string
  id2?: { local?: string; global?: string }
  args?: { name?: string; data?: { functionName?: string; type?: string; url?: string } }
}

export interface FrameSpan {
  name: string
  startUs: number
  endUs: number
}

export interface ThreadShare {
  thread: string
  /** Wall time its top-level tasks overlapped the frame. */
  busyMs: number
  /** The CPU time of those tasks, prorated to the overlap; only of tasks that carry one. */
  cpuMs: number
  /** Tasks the trace gives no CPU time for (their wall time is in busyMs, none in cpuMs). */
  tasksWithoutCpu: number
}

export interface FrameBreakdown {
  frame: string
  ms: number
  threads: ThreadShare[]
  /** Renderer main-thread events inside the frame by name (nested events count in their parents too). */
  main: { name: string; ms: number }[]
}

/** The threads whose work makes a frame in this headless, software-GL Chromium. */
const THREADS: Readonly<Record<string, string>> = {
  CrRendererMain: 'renderer main',
  Compositor: 'renderer compositor',
  CrGpuMain: 'GPU main',
  VizCompositorThread: 'viz compositor',
}

/** Top-level task events: everything a thread runs is inside one of these. */
const TOP_LEVEL = new Set(['ThreadControllerImpl::RunTask', 'RunTask'])

/**
 * The user-timing measures `frame:*` as spans (they are async begin/end
 * pairs in the trace). Chromium gives every measure of a page the same id,
 * so a pair is told by its name as well: the bench names each frame apart.
 */
export function frameSpans(events: readonly TraceEvent[]): FrameSpan[] {
  const open = new Map<string, number>()
  const spans: FrameSpan[] = []
  for (const e of events) {
    if (!e.cat.includes('blink.user_timing') || !e.name.startsWith('frame:')) continue
    const key = `${e.name}|${e.id ?? e.id2?.local ?? e.id2?.global ?? ''}`
    if (e.ph === 'b') open.set(key, e.ts)
    else if (e.ph === 'e') {
      const start = open.get(key)
      if (start !== undefined) spans.push({ name: e.name, startUs: start, endUs: e.ts })
      open.delete(key)
    }
  }
  return spans.sort((a, b) => a.startUs - b.startUs)
}

const overlap = (e: TraceEvent, s: FrameSpan): number => Math.max(0, Math.min(e.ts + (e.dur ?? 0), s.endUs) - Math.max(e.ts, s.startUs))

/** Names a main-thread event by what it ran where that says more than its type. */
function label(e: TraceEvent): string {
  const d = e.args?.data
  if (e.name === 'FunctionCall' && d?.functionName) return `FunctionCall ${d.functionName}`
  if (e.name === 'EventDispatch' && d?.type) return `EventDispatch ${d.type}`
  return e.name
}

/** The breakdown of each frame span; the renderer is the process that recorded them. */
export function breakdown(events: readonly TraceEvent[], spans: readonly FrameSpan[]): FrameBreakdown[] {
  const threadName = new Map<string, string>()
  for (const e of events) if (e.ph === 'M' && e.name === 'thread_name' && e.args?.name) threadName.set(`${e.pid}:${e.tid}`, e.args.name)
  const rendererPid = events.find((e) => e.cat.includes('blink.user_timing') && e.name.startsWith('frame:'))?.pid
  const complete = events.filter((e) => e.ph === 'X' && e.dur !== undefined)
  const out: FrameBreakdown[] = []
  for (const s of spans) {
    const inFrame = complete.filter((e) => e.ts < s.endUs && e.ts + (e.dur ?? 0) > s.startUs)
    const threads = new Map<string, ThreadShare>()
    const main = new Map<string, number>()
    // A thread's tasks nest (RunTask inside ThreadControllerImpl::RunTask): count only the outermost.
    const outerEnd = new Map<string, number>()
    for (const e of inFrame.sort((a, b) => a.ts - b.ts || (b.dur ?? 0) - (a.dur ?? 0))) {
      const tn = threadName.get(`${e.pid}:${e.tid}`) ?? ''
      const label0 = THREADS[tn]
      if (!label0) continue
      // Renderer threads only of the page's renderer; the GPU and viz threads are the GPU process's.
      if ((tn === 'CrRendererMain' || tn === 'Compositor') && e.pid !== rendererPid) continue
      const o = overlap(e, s)
      if (TOP_LEVEL.has(e.name)) {
        const key = `${e.pid}:${e.tid}`
        if (e.ts < (outerEnd.get(key) ?? -1)) continue
        outerEnd.set(key, e.ts + (e.dur ?? 0))
        const t = threads.get(label0) ?? { thread: label0, busyMs: 0, cpuMs: 0, tasksWithoutCpu: 0 }
        t.busyMs += o / 1000
        if (e.tdur === undefined) t.tasksWithoutCpu++
        else t.cpuMs += (e.tdur * (o / Math.max(1, e.dur ?? 1))) / 1000
        threads.set(label0, t)
      } else if (tn === 'CrRendererMain') {
        main.set(label(e), (main.get(label(e)) ?? 0) + o / 1000)
      }
    }
    const round = (x: number): number => Math.round(x * 10) / 10
    out.push({
      frame: s.name,
      ms: round((s.endUs - s.startUs) / 1000),
      threads: [...threads.values()].map((t) => ({ ...t, busyMs: round(t.busyMs), cpuMs: round(t.cpuMs) })),
      main: [...main.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([name, ms]) => ({ name, ms: round(ms) })),
    })
  }
  return out
}
