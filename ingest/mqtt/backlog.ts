// How long data may have been waiting inside the gateway, where nothing
// downstream can see it. The twin judges silence at its watermark, the
// clock less the lag of the readings reaching it (twin/state/lag.ts). But
// under overload the readings a gateway holds back are not late: they have
// not arrived at all, and those that do arrive are fresh. In a full-city
// run the twin called 129,498 connected devices silent with a lag of 0
// while their readings waited in starved gateway workers. So each gateway
// process says how far behind it may be, and the twin counts that as lag:
//
// - connections waiting for room in the process hold their data back since
//   their oldest packet began to wait (ingest/mqtt/admission.ts);
// - a process that does not get the CPU reads its sockets late: its event
//   loop's delay over the last interval says by how much;
// - a worker that reports nothing for a while is itself behind by that long.
import cluster, { type Worker } from 'node:cluster'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { Component, ComponentStats } from '../../lib/component.ts'
import type { IngestSource } from '../../lib/bus/bus.ts'

/** How often a gateway worker reports its backlog to the primary. */
export const BACKLOG_REPORT_MS = 1_000

interface BacklogMessage {
  type: 'citytwin-ingest-backlog'
  ms: number
  /** Whether the worker refuses connections to keep its memory (heap-guard.ts). */
  shedding: boolean
}

const isBacklog = (m: unknown): m is BacklogMessage =>
  typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'citytwin-ingest-backlog' && typeof (m as { ms?: unknown }).ms === 'number'

/**
 * The backlog of this gateway process: its waiting connections, and how late
 * its event loop ran over the last interval (sampled every
 * BACKLOG_REPORT_MS, so each stall counts for one interval).
 */
export class ProcessBacklog {
  readonly #admission: { oldestWaitingMs: (now: number) => number }
  readonly #loop: ReturnType<typeof monitorEventLoopDelay>
  readonly #timer: NodeJS.Timeout
  #loopMs = 0

  constructor(admission: { oldestWaitingMs: (now: number) => number }) {
    this.#admission = admission
    this.#loop = monitorEventLoopDelay({ resolution: 20 })
    this.#loop.enable()
    this.#timer = setInterval(() => {
      this.#loopMs = Math.round(this.#loop.max / 1e6)
      this.#loop.reset()
    }, BACKLOG_REPORT_MS)
    this.#timer.unref()
  }

  /** Ms data may have been waiting in this process at `now`. */
  backlogMs(now: number): number {
    return Math.max(this.#admission.oldestWaitingMs(now), this.#loopMs)
  }

  close(): void {
    clearInterval(this.#timer)
    this.#loop.disable()
  }
}

/**
 * In a gateway worker: reports the process's backlog to the primary every
 * BACKLOG_REPORT_MS, so the primary's twin can count it.
 */
export class BacklogReporter implements Component {
  readonly name = 'mqtt-backlog-reporter'
  readonly #backlog: IngestSource
  #timer: NodeJS.Timeout | undefined
  #sent = 0

  constructor(backlog: IngestSource) {
    this.#backlog = backlog
  }

  async start(): Promise<void> {
    this.#timer = setInterval(() => {
      if (!cluster.isWorker || !process.connected) return
      process.send?.({ type: 'citytwin-ingest-backlog', ms: this.#backlog.backlogMs(Date.now()), shedding: this.#backlog.shedding() } satisfies BacklogMessage)
      this.#sent++
    }, BACKLOG_REPORT_MS)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
  }

  stats(): ComponentStats {
    return { reports: this.#sent }
  }
}

/**
 * In the primary: the workers' reports. A worker's backlog is what it last
 * reported, or, when its report is overdue, how overdue it is: a worker too
 * starved to report is behind by at least that.
 */
export class WorkerBacklogs {
  readonly #reports = new Map<number, { ms: number; at: number; shedding: boolean }>()

  /** Follows a worker's reports until it exits. */
  watch(worker: Worker): void {
    worker.on('message', (m: unknown) => {
      if (isBacklog(m)) this.report(worker.id, m.ms, Date.now(), m.shedding === true)
    })
    worker.once('exit', () => this.forget(worker.id))
  }

  report(workerId: number, ms: number, at: number, shedding = false): void {
    this.#reports.set(workerId, { ms, at, shedding })
  }

  /** Whether any worker last said it sheds devices. */
  shedding(): boolean {
    for (const r of this.#reports.values()) if (r.shedding) return true
    return false
  }

  forget(workerId: number): void {
    this.#reports.delete(workerId)
  }

  /** The largest backlog of any worker at `now`, in ms. */
  backlogMs(now: number): number {
    let most = 0
    for (const { ms, at } of this.#reports.values()) most = Math.max(most, ms, now - at - BACKLOG_REPORT_MS)
    return most
  }
}
