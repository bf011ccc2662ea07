// The time slider's frames (GET /api/map/replay, see twin/state/replay.ts):
// per hour of the last day and per grid, the health score and the worst
// ticket open at the end of the hour. A frame becomes grid rows that the map's
// GridState takes like live ones, so the same colours mean the same thing.
import type { GridColumns } from './grid-state.ts'

export interface ReplayFrames {
  level: string
  stepMs: number
  times: number[]
  ids: number[]
  /** Frame-major, -1: no readings stored for that hour. */
  health: number[]
  /** Frame-major: 0 none, 1 info, 2 warning, 3 critical. */
  worst: number[]
}

/** The rows of frame `f`, for GridState.apply. */
export function frameRows(r: ReplayFrames, f: number): GridColumns[] {
  const n = r.ids.length
  const out: GridColumns[] = []
  for (let i = 0; i < n; i++) {
    const h = r.health[f * n + i] ?? -1
    const w = r.worst[f * n + i] ?? 0
    out.push({
      id: r.ids[i] ?? 0, health: h < 0 ? Number.NaN : h,
      ticketsInfo: w === 1 ? 1 : 0, ticketsWarning: w === 2 ? 1 : 0, ticketsCritical: w === 3 ? 1 : 0,
      devOnline: 0, devSilent: 0, devOffline: 0, devUnknown: 0,
    })
  }
  return out
}

/** The slider's label for frame `f`: the hour it covers, in the viewer's locale. */
export function frameLabel(r: ReplayFrames, f: number, locale: string): string {
  const t = r.times[f]
  if (t === undefined) return ''
  const fmt = new Intl.DateTimeFormat(locale, { month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false })
  return `${fmt.format(new Date(t))}–${new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit', hour12: false }).format(new Date(t + r.stepMs))}`
}
