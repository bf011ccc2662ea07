// Prometheus metrics. One registry per process; names carry their unit and
// the `citytwin_` prefix. Components create their metrics through these
// helpers so a second component instance (tests start many) reuses the same
// series instead of throwing "already registered".
import client from 'prom-client'

export const registry = new client.Registry()
registry.setDefaultLabels({ service: 'citytwin' })
client.collectDefaultMetrics({ register: registry, prefix: 'citytwin_process_' })

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

export function histogram<L extends string>(name: string, help: string, labelNames: Labels<L> = [], buckets?: number[]): client.Histogram<L> {
  const existing = registry.getSingleMetric(name)
  if (existing) return existing as client.Histogram<L>
  return new client.Histogram<L>({ name, help, labelNames: [...labelNames], registers: [registry], ...(buckets ? { buckets } : {}) })
}

export async function metricsText(): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() }
}
