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

export function histogram<L extends string>(name: string, help: string, labelNames: Labels<L> = [], buckets?: number[]): client.Histogram<L> {
  const existing = registry.getSingleMetric(name)
  if (existing) return existing as client.Histogram<L>
  return new client.Histogram<L>({ name, help, labelNames: [...labelNames], registers: [registry], ...(buckets ? { buckets } : {}) })
}

export async function metricsText(): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() }
}
