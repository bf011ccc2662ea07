// Reading a Chromium trace for bench:viewer --trace: frame spans from
// user-timing pairs, and per frame the busy and CPU time of each thread and
// what the renderer's main thread ran.
import { describe, expect, it } from 'vitest'
import { breakdown, frameSpans, type TraceEvent } from '../../bench/frame-trace.ts'

const RENDERER = 10
const GPU = 20
const meta = (pid: number, tid: number, name: string): TraceEvent => ({ pid, tid, ts: 0, ph: 'M', name: 'thread_name', cat: '__metadata', args: { name } })
const measure = (name: string, ph: 'b' | 'e', ts: number): TraceEvent => ({ pid: RENDERER, tid: 1, ts, ph, name, cat: 'blink.user_timing', id2: { local: '0x28' } })
const task = (pid: number, tid: number, name: string, ts: number, dur: number, tdur?: number, data?: { functionName?: string }): TraceEvent =>
  ({ pid, tid, ts, dur, ...(tdur === undefined ? {} : { tdur }), ph: 'X', name, cat: 'toplevel', ...(data ? { args: { data } } : {}) })

const events: TraceEvent[] = [
  meta(RENDERER, 1, 'CrRendererMain'),
  meta(GPU, 5, 'CrGpuMain'),
  meta(99, 1, 'CrRendererMain'), // another tab's renderer: not counted
  // Two frames, 0-100 ms and 100-300 ms; every measure shares one id, as in Chromium.
  measure('frame:city:0', 'b', 0), measure('frame:city:0', 'e', 100_000),
  measure('frame:city:1', 'b', 100_000), measure('frame:city:1', 'e', 300_000),
  // Frame 0: a task nested in another with the same start (counted once), 40 ms wall, 10 ms CPU.
  task(RENDERER, 1, 'ThreadControllerImpl::RunTask', 10_000, 40_000, 10_000),
  task(RENDERER, 1, 'RunTask', 10_000, 40_000, 10_000),
  task(RENDERER, 1, 'FunctionCall', 12_000, 5_000, 5_000, { functionName: '_animationFrame' }),
  // Straddles the frame edge: 80-120 ms, CPU 20 ms; half in each frame.
  task(RENDERER, 1, 'RunTask', 80_000, 40_000, 20_000),
  // A GPU task without a CPU time: wall only.
  task(GPU, 5, 'RunTask', 150_000, 100_000),
  task(99, 1, 'RunTask', 0, 300_000, 300_000),
]

describe('frame trace', () => {
  it('pairs the measures by name, though Chromium gives them one id', () => {
    expect(frameSpans(events)).toEqual([
      { name: 'frame:city:0', startUs: 0, endUs: 100_000 },
      { name: 'frame:city:1', startUs: 100_000, endUs: 300_000 },
    ])
  })

  it('counts nested tasks once, splits a task at a frame edge, and keeps wall time without a CPU time out of the CPU', () => {
    const [f0, f1] = breakdown(events, frameSpans(events))
    expect(f0).toMatchObject({ frame: 'frame:city:0', ms: 100, threads: [{ thread: 'renderer main', busyMs: 60, cpuMs: 20, tasksWithoutCpu: 0 }] })
    expect(f0?.main).toContainEqual({ name: 'FunctionCall _animationFrame', ms: 5 })
    expect(f1?.threads).toEqual([
      { thread: 'renderer main', busyMs: 20, cpuMs: 10, tasksWithoutCpu: 0 },
      { thread: 'GPU main', busyMs: 100, cpuMs: 0, tasksWithoutCpu: 1 },
    ])
  })
})
