// The system's Prometheus text (GET /metrics), as the benchmarks read it.

/**
 * The sum of every series of `name` whose labels include each of `labels`
 * (written as in the text: 'table="readings"'); undefined when none does.
 */
export function metricSum(text: string, name: string, ...labels: string[]): number | undefined {
  let sum: number | undefined
  for (const s of seriesOf(text, name)) {
    if (labels.every((l) => s.labels.includes(l))) sum = (sum ?? 0) + s.value
  }
  return sum
}

/** Each series of `name` in the text: its labels as written (without braces; '' for none) and its value. */
function* seriesOf(text: string, name: string): Generator<{ labels: string; value: number }> {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const brace = line.indexOf('}')
    yield { labels: brace > 0 ? line.slice(name.length + 1, brace) : '', value: Number(line.slice(line.lastIndexOf(' ') + 1)) }
  }
}

/** Like metricSum, for a series the system must have: its absence is an error, not a zero. */
export function requireMetric(text: string, name: string, ...labels: string[]): number {
  const v = metricSum(text, name, ...labels)
  if (v === undefined) throw new Error(`/metrics has no ${name}${labels.length > 0 ? `{${labels.join(',')}}` : ''}`)
  return v
}

/**
 * The value of the primary's own series of `name` (the one without a
 * `worker` label: each gateway worker's series carries its slot); undefined
 * when there is none.
 */
export function primaryMetric(text: string, name: string): number | undefined {
  for (const s of seriesOf(text, name)) if (!s.labels.includes('worker=')) return s.value
  return undefined
}

/**
 * A histogram's cumulative counts by upper bound (`le`, +Inf as Infinity), summed over the series whose
 * labels include each of `labels`: what `quantileAtMost` reads the difference of two scrapes from.
 */
export function histogramBuckets(text: string, name: string, ...labels: string[]): Map<number, number> {
  const out = new Map<number, number>()
  for (const s of seriesOf(text, `${name}_bucket`)) {
    if (!labels.every((l) => s.labels.includes(l))) continue
    const le = /le="([^"]+)"/.exec(s.labels)?.[1]
    if (le === undefined) continue
    const bound = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le)
    out.set(bound, (out.get(bound) ?? 0) + s.value)
  }
  return out
}

/**
 * Between two scrapes of a histogram (`before`, `after` from histogramBuckets): how many were observed,
 * and the smallest bucket bound that holds the fraction `q` of them (an upper bound of that quantile).
 */
export function quantileAtMost(before: Map<number, number>, after: Map<number, number>, q: number): { n: number; atMost: number } {
  const n = (after.get(Number.POSITIVE_INFINITY) ?? 0) - (before.get(Number.POSITIVE_INFINITY) ?? 0)
  if (n <= 0) return { n, atMost: Number.NaN }
  const bounds = [...after.keys()].sort((a, b) => a - b)
  // +Inf holds all n, so the loop always returns.
  for (const le of bounds) if ((after.get(le) ?? 0) - (before.get(le) ?? 0) >= q * n) return { n, atMost: le }
  return { n, atMost: Number.POSITIVE_INFINITY }
}
