// Counters counted in plain numbers and handed to prom-client at scrape time
// (lib/metrics.ts tallyCounter): what a scrape shows is exactly what was
// counted, once, whatever the number of scrapes between.
import { describe, expect, it } from 'vitest'
import { metricsText, tallyCounter } from '../../lib/metrics.ts'

const valueOf = async (name: string, label: string): Promise<number | undefined> => {
  const line = (await metricsText()).body.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

describe('tallyCounter', () => {
  it('shows each series from its first use, and every count exactly once across scrapes', async () => {
    const c = tallyCounter('citytwin_test_tally_total', 'test', ['outcome'])
    const ok = c.labels({ outcome: 'ok' })
    const bad = c.labels({ outcome: 'bad' })
    expect(await valueOf('citytwin_test_tally_total', 'outcome="ok"')).toBe(0)
    for (let i = 0; i < 1_000; i++) ok.inc()
    bad.inc(5)
    expect(await valueOf('citytwin_test_tally_total', 'outcome="ok"')).toBe(1_000)
    expect(await valueOf('citytwin_test_tally_total', 'outcome="bad"')).toBe(5)
    // Scraped again with nothing new: the same, not twice.
    expect(await valueOf('citytwin_test_tally_total', 'outcome="ok"')).toBe(1_000)
    ok.inc()
    // The same series asked for again (a second gateway in one process) adds to it.
    c.labels({ outcome: 'ok' }).inc(2)
    expect(await valueOf('citytwin_test_tally_total', 'outcome="ok"')).toBe(1_003)
  })
})

describe('process metrics', () => {
  it('count open descriptors, and walk no socket a scrape (no active handles or resources)', async () => {
    const body = (await metricsText()).body
    const fds = body.split('\n').find((l) => l.startsWith('citytwin_process_process_open_fds{'))
    expect(Number(fds?.slice(fds.lastIndexOf(' ') + 1))).toBeGreaterThan(2)
    expect(body).not.toMatch(/citytwin_process_nodejs_active_(handles|resources)/)
    // The usual process series are still there.
    expect(body).toMatch(/citytwin_process_process_cpu_seconds_total\{/)
    expect(body).toMatch(/citytwin_process_nodejs_heap_size_used_bytes\{/)
  })
})
