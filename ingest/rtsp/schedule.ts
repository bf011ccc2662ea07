// When each camera is probed. Every camera a reachability probe every
// `reachEveryS` (default 5 minutes: the city's 130,000 at about 430 a
// second, spread evenly by a phase from the camera's id, not in a burst),
// and every `picturesEveryS` the probe goes deeper: a health window and
// sampled keyframes. Cameras being watched (an open ticket, a recent event)
// go deeper every `watchPicturesEveryS` and are taken first when more is
// due than the gateway can run. A failed probe is tried again sooner, with
// backoff and jitter (lib/backoff.ts), up to the normal period. Pure over
// the clock it is given.
import { createHash } from 'node:crypto'
import { backoffDelayMs } from '../../lib/backoff.ts'

export interface ScheduleOptions {
  reachEveryS: number
  picturesEveryS: number
  watchPicturesEveryS: number
  /** First retry after a failure; doubled each failure up to reachEveryS. */
  retryAfterS: number
  random?: () => number
}

export const DEFAULT_SCHEDULE: ScheduleOptions = { reachEveryS: 300, picturesEveryS: 900, watchPicturesEveryS: 120, retryAfterS: 15 }

export interface DueProbe {
  cameraId: string
  /** A health window and keyframes, not reachability alone. */
  deep: boolean
}

interface Entry {
  id: string
  at: number
  deepAt: number
  phase: number
  watched: boolean
  failures: number
  /** Taken by due() and not yet given back by done(). */
  busy: boolean
  /** Position in its heap, -1 when in none. */
  slot: number
}

/** A binary min-heap of entries by `at`, each knowing its slot so it can be moved. */
class Heap {
  readonly items: Entry[] = []
  push(e: Entry): void {
    e.slot = this.items.length
    this.items.push(e)
    this.#up(e.slot)
  }
  peek(): Entry | undefined {
    return this.items[0]
  }
  pop(): Entry | undefined {
    const top = this.items[0]
    if (top) this.remove(top)
    return top
  }
  remove(e: Entry): void {
    const i = e.slot
    if (i < 0) return
    const last = this.items.pop() as Entry
    e.slot = -1
    if (last === e) return
    this.items[i] = last
    last.slot = i
    this.#up(i)
    this.#down(last.slot)
  }
  #swap(i: number, j: number): void {
    const a = this.items[i] as Entry
    const b = this.items[j] as Entry
    this.items[i] = b
    this.items[j] = a
    a.slot = j
    b.slot = i
  }
  #up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1
      if ((this.items[parent] as Entry).at <= (this.items[i] as Entry).at) return
      this.#swap(i, parent)
      i = parent
    }
  }
  #down(i: number): void {
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < this.items.length && (this.items[l] as Entry).at < (this.items[m] as Entry).at) m = l
      if (r < this.items.length && (this.items[r] as Entry).at < (this.items[m] as Entry).at) m = r
      if (m === i) return
      this.#swap(i, m)
      i = m
    }
  }
}

/** A number in [0, 1) from the camera's id: where in each period its probe falls. */
function phaseOf(id: string): number {
  return createHash('sha1').update(id).digest().readUInt32BE(0) / 2 ** 32
}

export class ProbeSchedule {
  readonly #o: ScheduleOptions
  readonly #entries = new Map<string, Entry>()
  readonly #watched = new Heap()
  readonly #normal = new Heap()

  constructor(options: Partial<ScheduleOptions> = {}) {
    this.#o = { ...DEFAULT_SCHEDULE, ...options }
  }

  get size(): number {
    return this.#entries.size
  }

  /** Adds a camera (once: adding it again changes nothing); its first probe falls at its phase of the current period. */
  add(cameraId: string, nowMs: number): void {
    if (this.#entries.has(cameraId)) return
    const phase = phaseOf(cameraId)
    const period = this.#o.reachEveryS * 1000
    const at = Math.floor(nowMs / period) * period + phase * period
    const e: Entry = { id: cameraId, at: at < nowMs ? at + period : at, deepAt: 0, phase, watched: false, failures: 0, busy: false, slot: -1 }
    // The first deep probe within the first pictures period, at the same phase.
    e.deepAt = nowMs + phase * this.#o.picturesEveryS * 1000
    this.#entries.set(cameraId, e)
    this.#normal.push(e)
  }

  remove(cameraId: string): void {
    const e = this.#entries.get(cameraId)
    if (!e) return
    this.#heapOf(e).remove(e)
    this.#entries.delete(cameraId)
  }

  /** Marks a camera as watched (an open ticket, a recent event) or not. */
  watch(cameraId: string, watched: boolean, nowMs: number): void {
    const e = this.#entries.get(cameraId)
    if (!e || e.watched === watched) return
    const inHeap = e.slot >= 0
    if (inHeap) this.#heapOf(e).remove(e)
    e.watched = watched
    if (watched) {
      e.deepAt = Math.min(e.deepAt, nowMs + this.#o.watchPicturesEveryS * 1000)
      // A deep probe falls at a probe: a watched camera's comes when it is due, not at its next reachability slot.
      e.at = Math.min(e.at, e.deepAt)
    }
    if (inHeap) this.#heapOf(e).push(e)
  }

  /** Up to `max` probes due at `nowMs`, watched cameras first; each is busy until done(). */
  due(nowMs: number, max: number): DueProbe[] {
    const out: DueProbe[] = []
    for (const heap of [this.#watched, this.#normal]) {
      while (out.length < max) {
        const top = heap.peek()
        if (!top || top.at > nowMs) break
        heap.pop()
        top.busy = true
        out.push({ cameraId: top.id, deep: nowMs >= top.deepAt })
      }
    }
    return out
  }

  /** Cameras due and not yet taken: how far behind the gateway is. */
  backlog(nowMs: number): number {
    let n = 0
    for (const e of this.#entries.values()) if (!e.busy && e.at <= nowMs) n++
    return n
  }

  /** A probe finished: when the camera's next one falls. */
  done(cameraId: string, ok: boolean, deep: boolean, nowMs: number): void {
    const e = this.#entries.get(cameraId)
    // Only the probe due() handed out: a camera removed and added again meanwhile is a new entry, already scheduled.
    if (!e || !e.busy || e.slot >= 0) return
    e.busy = false
    const period = this.#o.reachEveryS * 1000
    if (ok) {
      e.failures = 0
      // The next slot at the camera's phase, never in the past: a gateway that fell behind does not probe in a burst.
      const base = Math.floor(nowMs / period) * period + e.phase * period
      e.at = base > nowMs ? base : base + period
    } else {
      e.failures++
      e.at = nowMs + backoffDelayMs(e.failures - 1, { initialMs: this.#o.retryAfterS * 1000, maxMs: period, ...(this.#o.random ? { random: this.#o.random } : {}) })
    }
    if (deep && ok) e.deepAt = nowMs + (e.watched ? this.#o.watchPicturesEveryS : this.#o.picturesEveryS) * 1000
    if (e.watched && ok) e.at = Math.min(e.at, Math.max(e.deepAt, nowMs))
    this.#heapOf(e).push(e)
  }

  #heapOf(e: Entry): Heap {
    return e.watched ? this.#watched : this.#normal
  }
}
