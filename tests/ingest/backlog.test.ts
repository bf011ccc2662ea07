// The gateway workers' backlogs as the primary sees them: what each last
// reported, or how overdue its report is, whichever is more; a worker that
// has exited counts no more.
import { describe, expect, it } from 'vitest'
import { BACKLOG_REPORT_MS, WorkerBacklogs } from '../../ingest/mqtt/backlog.ts'

const T0 = 1_790_000_000_000

describe('worker backlogs', () => {
  it('is the largest of the workers\' reports, or how overdue a report is', () => {
    const b = new WorkerBacklogs()
    expect(b.backlogMs(T0)).toBe(0)
    b.report(1, 40, T0)
    b.report(2, 2_500, T0)
    expect(b.backlogMs(T0 + 500)).toBe(2_500)
    // Worker 2 catches up; worker 1 stops reporting (too starved to send).
    b.report(2, 30, T0 + 900)
    expect(b.backlogMs(T0 + 900)).toBe(40)
    // Its report is due every BACKLOG_REPORT_MS; four seconds past that, it is four seconds behind.
    const later = T0 + BACKLOG_REPORT_MS + 4_000
    expect(b.backlogMs(later)).toBe(4_000)
    // Once it exits, only worker 2 counts: its last report (at T0 + 900) is overdue too, by 900 ms less.
    b.forget(1)
    expect(b.backlogMs(later)).toBe(4_000 - 900)
  })
})
