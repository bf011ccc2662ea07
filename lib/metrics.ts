// Prometheus metrics. One registry per process; names carry their unit and
// the `citytwin_` prefix. Components create their metrics through these
// helpers so a second component instance (tests start many) reuses the same
// series instead of throwing "already registered".
import cluster, { type Worker } from 'node:cluster'
import { readdirSync } from 'node:fs'
import client from 'prom-client'

export const registry = new client.Registry()
registry.setDefaultLabels({ service: 'citytwin' })
const PROCESS_PREFIX = 'citytwin_process_'
client.collectDefaultMetrics({ register: registry, prefix: PROCESS_PREFIX })
// Three of prom-client's defaults cost a walk over every open socket at each
// scrape: the active handles and resources (an object or a string a socket,
// counted by type) and the open descriptors (a listing of /proc/self/fd). A
// gateway worker holds up to 20,000 connections: a scrape cost it about 40 ms
// of CPU with its event loop held, 13 workers half a core-second a scrape.
// The handles and resources say nothing the gateway's own connection gauges
// do not; the descriptor count is kept (the limit is 20,000 a process), read
// at most every OPEN_FDS_EVERY_MS.
for (const name of ['nodejs_active_handles', 'nodejs_active_handles_total', 'nodejs_active_resources', 'nodejs_active_resources_total', 'process_open_fds']) {
  registry.removeSingleMetric(PROCESS_PREFIX + name)
}
const OPEN_FDS_EVERY_MS = 30_000
let openFds = { at: -Infinity, n: 0 }
if (process.platform === 'linux') {
  new client.Gauge({
    name: `${PROCESS_PREFIX}process_open_fds`,
    help: `Number of open file descriptors (read at most every ${OPEN_FDS_EVERY_MS / 1000} s: a listing of /proc/self/fd costs a gateway worker milliseconds).`,
    registers: [registry],
    collect() {
      const now = performance.now()
      if (now - openFds.at >= OPEN_FDS_EVERY_MS) {
        try {
          // Less the descriptor the listing itself used.
          openFds = { at: now, n: readdirSync('/proc/self/fd').length - 1 }
        } catch {
          // /proc unreadable (a sandbox): the last count stands.
        }
      }
      this.set(openFds.n)
    },
  })
}

type Labels<L extends string> = readonly L[]

export function counter<L extends string>(name: string, help: string, labelNames: Labels<L> = []): client.Counter<L> {
  const existing = registry.getSingleMetric(name)
  if (existing) return existing as client.Counter<L>
  return new client.Counter<L>({ name, help, labelNames: [...labelNames], registers: [registry] })
}

export function gauge<L extends string>(name: string, help: string, labelNames: Labels<L> = []): client.Gauge<L> {
  const existing = registry.getSingleMetric(name)
  if (existing) return existing as client.Gauge<L>
  return new client.Gauge<L>({ name, help, labelNames: [...labelNames], registers: [registry] })
}

/** A gauge read at each scrape; `watch` names what to read for one set of labels and returns how to stop. */
export interface SampledGauge<L extends string> {
  watch(labels: Partial<Record<L, string>>, read: () => number): () => void
}

const samplers = new Map<string, Map<string, { labels: Partial<Record<string, string>>; read: () => number }>>()

/**
 * A gauge whose value is read when Prometheus scrapes, not set on every
 * change: for values that move with every message (a queue's length), where
 * prom-client's set (a labels object hashed per call) would cost more than
 * the change itself. One reader per set of labels: the latest watch wins.
 */
export function sampledGauge<L extends string>(name: string, help: string, labelNames: Labels<L> = []): SampledGauge<L> {
  let readers = samplers.get(name)
  if (!readers) {
    const rs = new Map<string, { labels: Partial<Record<string, string>>; read: () => number }>()
    readers = rs
    samplers.set(name, rs)
    if (!registry.getSingleMetric(name)) {
      new client.Gauge<L>({
        name, help, labelNames: [...labelNames], registers: [registry],
        collect() {
          for (const { labels, read } of rs.values()) this.set(labels as Partial<Record<L, string>>, read())
        },
      })
    }
  }
  const rs = readers
  return {
    watch(labels, read) {
      const key = JSON.stringify(labels)
      const entry = { labels, read }
      rs.set(key, entry)
      return () => {
        if (rs.get(key) !== entry) return
        rs.delete(key)
        ;(registry.getSingleMetric(name) as client.Gauge<L> | undefined)?.set(labels, read())
      }
    },
  }
}

/** A counter's series for one set of labels, counted in a plain number (see tallyCounter). */
export interface Tally {
  inc(n?: number): void
}

const tallies = new Map<string, Map<string, { labels: Partial<Record<string, string>>; pending: number }>>()

/**
 * A counter for what happens on every message: `labels(...)` gives a series
 * whose `inc` adds to a plain number, handed to prom-client when Prometheus
 * scrapes. prom-client's own `inc` hashes the labels object and allocates on
 * every call, even through a bound child: about 5% of what a gateway
 * process allocated per message at saturation (allocation sampling,
 * 2026-11-30). Counters only go up, so adding at scrape time what was
 * counted since is exact.
 */
export function tallyCounter<L extends string>(name: string, help: string, labelNames: Labels<L> = []): { labels(labels: Partial<Record<L, string>>): Tally } {
  let series = tallies.get(name)
  if (!series) {
    if (registry.getSingleMetric(name)) throw new Error(`metric ${name} is already registered as another kind of counter`)
    const ss = new Map<string, { labels: Partial<Record<string, string>>; pending: number }>()
    series = ss
    tallies.set(name, ss)
    new client.Counter<L>({
      name, help, labelNames: [...labelNames], registers: [registry],
      collect() {
        for (const s of ss.values()) {
          if (s.pending > 0) this.inc(s.labels as Partial<Record<L, string>>, s.pending)
          s.pending = 0
        }
      },
    })
  }
  const ss = series
  return {
    labels(labels) {
      const key = JSON.stringify(labels)
      let s = ss.get(key)
      if (!s) {
        s = { labels, pending: 0 }
        ss.set(key, s)
        // The series shows at 0 from the start, as prom-client's own would once used.
        ;(registry.getSingleMetric(name) as client.Counter<L> | undefined)?.inc(labels, 0)
      }
      const entry = s
      return {
        inc(n = 1) {
          entry.pending += n
        },
      }
    },
  }
}

export function histogram<L extends string>(name: string, help: string, labelNames: Labels<L> = [], buckets?: number[]): client.Histogram<L> {
  const existing = registry.getSingleMetric(name)
  if (existing) return existing as client.Histogram<L>
  return new client.Histogram<L>({ name, help, labelNames: [...labelNames], registers: [registry], ...(buckets ? { buckets } : {}) })
}

/**
 * This process's metrics in the Prometheus text format. In a primary with
 * gateway workers, each worker's series are added, labelled with its slot
 * (`worker="0"`...; a replacement takes its slot, so a restart is a counter
 * reset of that series, as Prometheus expects), so one scrape of the API
 * sees the whole system; before, the workers' ingest counters reached no
 * scrape at all. Sum over `worker` for the city. A worker that does not
 * answer within `WORKER_ANSWER_MS` (stopped, busy) is left out of that
 * scrape and counted in `citytwin_metrics_workers_unanswered`.
 */
export async function metricsText(): Promise<{ contentType: string; body: string }> {
  const workers = cluster.isPrimary ? Object.values(cluster.workers ?? {}).filter((w) => w?.isConnected()) : []
  if (workers.length === 0) return { contentType: registry.contentType, body: await registry.metrics() }
  const answers = await Promise.all(workers.map((w) => (w ? askWorker(w) : Promise.resolve(undefined))))
  const got = answers.filter((a): a is client.MetricObjectWithValues<client.MetricValue<string>>[] => a !== undefined)
  unanswered.set(answers.length - got.length)
  const merged = client.AggregatorRegistry.aggregate([await registry.getMetricsAsJSON(), ...got] as Parameters<typeof client.AggregatorRegistry.aggregate>[0])
  return { contentType: registry.contentType, body: await merged.metrics() }
}

const WORKER_ANSWER_MS = 1_000
const METRICS_ASK = 'citytwin-metrics-ask'
const METRICS_ANSWER = 'citytwin-metrics-answer'
const unanswered = gauge('citytwin_metrics_workers_unanswered', 'Gateway workers whose metrics did not come back for the latest scrape (stopped or too busy to answer within a second)')
let asked = 0

interface MetricsAnswer {
  type: typeof METRICS_ANSWER
  id: number
  metrics: unknown
}

const isAnswer = (m: unknown): m is MetricsAnswer => typeof m === 'object' && m !== null && (m as { type?: unknown }).type === METRICS_ANSWER

function askWorker(w: Worker): Promise<client.MetricObjectWithValues<client.MetricValue<string>>[] | undefined> {
  const id = ++asked
  return new Promise((resolve) => {
    const done = (v: client.MetricObjectWithValues<client.MetricValue<string>>[] | undefined): void => {
      clearTimeout(timer)
      w.off('message', onMessage)
      resolve(v)
    }
    const onMessage = (m: unknown): void => {
      if (isAnswer(m) && m.id === id) done(Array.isArray(m.metrics) ? (m.metrics as client.MetricObjectWithValues<client.MetricValue<string>>[]) : undefined)
    }
    const timer = setTimeout(() => done(undefined), WORKER_ANSWER_MS)
    w.on('message', onMessage)
    try {
      w.send({ type: METRICS_ASK, id })
    } catch {
      done(undefined)
    }
  })
}

/** In a cluster worker: answers the primary's scrapes with this process's metrics (see metricsText), each series labelled `worker` (its slot). */
export function answerMetricsAsks(worker: string): void {
  process.on('message', (m: unknown) => {
    if (typeof m !== 'object' || m === null || (m as { type?: unknown }).type !== METRICS_ASK) return
    const id = (m as { id?: unknown }).id
    void registry.getMetricsAsJSON().then(
      (metrics) => {
        for (const metric of metrics) for (const v of metric.values) v.labels = { ...v.labels, worker }
        process.send?.({ type: METRICS_ANSWER, id, metrics })
      },
      () => process.send?.({ type: METRICS_ANSWER, id, metrics: null }),
    )
  })
}
