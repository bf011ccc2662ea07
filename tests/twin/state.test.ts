// The live twin: device statuses (silent is not disconnected), incremental
// roll-ups checked against a brute-force recount on a random city, tickets,
// and what changed.
import { describe, expect, it } from 'vitest'
import type { Element, TicketElement } from '../../lib/bus/elements.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { createRng } from '../../simulators/city/random.ts'
import { DEVICE_TYPE_BY_NAME } from '../../registry/device-types.ts'
import { deviceStatus, reduceDevice, type DeviceLive } from '../../twin/state/device.ts'
import { healthScore } from '../../twin/state/health.ts'
import { IngestHealthMonitor } from '../../twin/state/ingest-health.ts'
import { IngestLag } from '../../twin/state/lag.ts'
import { CITY_ID, Twin, type TwinCity } from '../../twin/state/twin.ts'

const policy = { silentAfterIntervals: 3 }
const T0 = 1_790_000_000_000

function smallCity(seed: number): TwinCity {
  const c = generateCity({ seed, scale: 0.01 })
  return {
    grids: c.grids.map((g) => ({ ...g, centroid: g.centroid, ring: g.ring })),
    devices: c.devices.map((d) => ({ id: d.id, type: d.type, microGridId: d.microGridId, communityId: d.communityId, streetId: d.streetId, districtId: d.districtId, lon: d.lon, lat: d.lat, intervalS: d.intervalS })),
    cameras: c.cameras.map((k) => ({ id: k.id, kind: k.kind, microGridId: k.microGridId, communityId: k.communityId, streetId: k.streetId, districtId: k.districtId, lon: k.lon, lat: k.lat })),
  }
}

const fresh = (n: number): DeviceLive => ({ status: 'unknown', connected: false, lastActivity: 0, values: new Float64Array(n).fill(Number.NaN), times: new Float64Array(n).fill(Number.NaN) })

describe('device reducer', () => {
  const metrics = ['level_cm', 'battery_pct']
  it('goes online with a reading, silent after k intervals without one, offline on a disconnect', () => {
    const a = reduceDevice(fresh(2), { kind: 'reading', deviceId: 'D1', ts: T0, values: { level_cm: 12 } }, metrics, 60_000, policy, T0)
    expect(a.status).toBe('online')
    expect([...a.values]).toEqual([12, Number.NaN])
    expect(deviceStatus(a, T0 + 3 * 60_000, 60_000, policy)).toBe('online')
    expect(deviceStatus(a, T0 + 3 * 60_000 + 1, 60_000, policy)).toBe('silent')
    const b = reduceDevice(a, { kind: 'connectivity', deviceId: 'D1', ts: T0 + 1_000, state: 'disconnected' }, metrics, 60_000, policy, T0 + 1_000)
    expect(b.status).toBe('offline')
    expect(deviceStatus(b, T0 + 10 * 60_000, 60_000, policy)).toBe('offline') // a clean disconnect never turns silent
  })

  it('keeps the newest value of each metric when readings arrive out of order, and does not change its input', () => {
    const a = reduceDevice(fresh(2), { kind: 'reading', deviceId: 'D1', ts: T0 + 5_000, values: { level_cm: 20, battery_pct: 80 } }, metrics, 60_000, policy, T0 + 5_000)
    const b = reduceDevice(a, { kind: 'reading', deviceId: 'D1', ts: T0, values: { level_cm: 10, battery_pct: 81 } }, metrics, 60_000, policy, T0 + 5_000)
    expect([...b.values]).toEqual([20, 80])
    expect(b.lastActivity).toBe(T0 + 5_000)
    const c = reduceDevice(b, { kind: 'reading', deviceId: 'D1', ts: T0 + 6_000, values: { level_cm: 30 } }, metrics, 60_000, policy, T0 + 6_000)
    expect([...c.values]).toEqual([30, 80])
    expect([...b.values]).toEqual([20, 80])
  })

  it('judges liveness by when the gateway took a reading, not by the device\'s clock', () => {
    // Three minutes behind: heard now, so online, though its readings carry older times.
    const behind = reduceDevice(fresh(2), { kind: 'reading', deviceId: 'D1', ts: T0 - 180_000, receivedAt: T0, values: { level_cm: 1 } }, metrics, 10_000, policy, T0)
    expect([behind.status, behind.lastActivity, behind.times[0]]).toEqual(['online', T0, T0 - 180_000])
    // Four minutes ahead: a disconnect a second later (the gateway's clock) still wins.
    const ahead = reduceDevice(fresh(2), { kind: 'reading', deviceId: 'D1', ts: T0 + 240_000, receivedAt: T0, values: { level_cm: 1 } }, metrics, 10_000, policy, T0)
    const gone = reduceDevice(ahead, { kind: 'connectivity', deviceId: 'D1', ts: T0 + 1_000, state: 'disconnected' }, metrics, 10_000, policy, T0 + 1_000)
    expect(gone.status).toBe('offline')
    // A device event ahead of the clock is heard no later than now.
    const event = reduceDevice(fresh(2), { kind: 'device-event', deviceId: 'D1', ts: T0 + 240_000, name: 'tamper', severity: 'warning' }, metrics, 10_000, policy, T0)
    expect(event.lastActivity).toBe(T0)
  })

  it('lets a later disconnect win over an earlier reading heard after it', () => {
    const off = reduceDevice(fresh(2), { kind: 'connectivity', deviceId: 'D1', ts: T0 + 2_000, state: 'disconnected' }, metrics, 60_000, policy, T0 + 2_000)
    const late = reduceDevice(off, { kind: 'reading', deviceId: 'D1', ts: T0 + 1_000, values: { level_cm: 1 } }, metrics, 60_000, policy, T0 + 2_000)
    expect(late.status).toBe('offline')
  })
})

describe('health score', () => {
  const none = { unknown: 0, online: 0, silent: 0, offline: 0 }
  const cams = { unknown: 0, ok: 0, offline: 0, degraded: 0, tampered: 0 }
  const tickets = { info: 0, warning: 0, critical: 0 }
  it('is 100 for a grid where everything known is fine, and falls with silence and tickets', () => {
    expect(healthScore({ devices: { ...none, unknown: 5 }, cameras: cams, tickets })).toBe(100)
    expect(healthScore({ devices: { ...none, online: 90, silent: 10 }, cameras: cams, tickets })).toBe(90)
    expect(healthScore({ devices: { ...none, online: 100 }, cameras: cams, tickets: { ...tickets, critical: 1 } })).toBe(80)
    expect(healthScore({ devices: { ...none, online: 10 }, cameras: { ...cams, degraded: 10 }, tickets: { ...tickets, critical: 9 } })).toBe(15)
  })
})

describe('twin roll-ups', () => {
  it('match a brute-force recount after a random stream of elements, at every level', () => {
    const city = smallCity(11)
    const twin = new Twin(city, policy)
    const rng = createRng(5)
    const rand = rng.next
    const pick = rng.pick
    let now = T0
    const batch: Element[] = []
    for (let k = 0; k < 20_000; k++) {
      now += Math.floor(rand() * 50)
      const d = pick(city.devices)
      const r = rand()
      if (r < 0.7) {
        const m = DEVICE_TYPE_BY_NAME.get(d.type)?.metrics[0]
        batch.push({ kind: 'reading', deviceId: d.id, ts: now, values: m ? { [m.name]: m.typical } : {} })
      } else if (r < 0.85) batch.push({ kind: 'connectivity', deviceId: d.id, ts: now, state: rand() < 0.5 ? 'connected' : 'disconnected' })
      else if (r < 0.95) batch.push({ kind: 'camera-status', cameraId: pick(city.cameras).id, ts: now, status: pick(['ok', 'offline', 'degraded'] as const) })
      else batch.push({ kind: 'ticket', ticketId: `T${Math.floor(rand() * 300)}`, ts: now, open: rand() < 0.7, severity: pick(['info', 'warning', 'critical'] as const), deviceId: d.id })
      if (batch.length === 500) twin.apply(batch.splice(0), now)
    }
    twin.apply(batch.splice(0), now)
    twin.sweep(now + 120_000)

    // Recount from each device's and camera's own state, grid by grid.
    const expected = new Map<number, { online: number; silent: number; offline: number; unknown: number; ok: number; degraded: number }>()
    const add = (id: number, f: 'online' | 'silent' | 'offline' | 'unknown' | 'ok' | 'degraded'): void => {
      const e = expected.get(id) ?? { online: 0, silent: 0, offline: 0, unknown: 0, ok: 0, degraded: 0 }
      e[f]++
      expected.set(id, e)
    }
    city.devices.forEach((d, i) => {
      const s = twin.deviceStatus(i)
      for (const id of [d.microGridId, d.communityId, d.streetId, d.districtId, CITY_ID, ...twin.deviceSpecials(i)]) add(id, s)
    })
    city.cameras.forEach((c, i) => {
      const s = twin.cameraStatus(i)
      if (s === 'ok' || s === 'degraded') for (const id of [c.microGridId, c.communityId, c.streetId, c.districtId, CITY_ID]) add(id, s)
    })
    let checked = 0
    for (const id of [CITY_ID, ...city.grids.filter((g) => g.level !== 'special').map((g) => g.id)]) {
      const got = twin.counts(id)
      const want = expected.get(id) ?? { online: 0, silent: 0, offline: 0, unknown: 0, ok: 0, degraded: 0 }
      expect({ id, online: got?.devices.online, silent: got?.devices.silent, offline: got?.devices.offline, unknown: got?.devices.unknown })
        .toEqual({ id, online: want.online, silent: want.silent, offline: want.offline, unknown: want.unknown })
      checked++
    }
    expect(checked).toBeGreaterThan(600)
    const city0 = twin.counts(CITY_ID)
    expect(city0?.devices.total).toBe(city.devices.length)
    expect(city0?.cameras.total).toBe(city.cameras.length)
    expect(city0?.devices.silent).toBeGreaterThan(0)
    // Open tickets add up to those still open on the devices.
    const perDevice = city.devices.reduce((n, _d, i) => n + twin.deviceOpenTickets(i), 0)
    expect(city0?.tickets.total).toBe(perDevice)
  })

  it('takes the open tickets the store holds in place of its own, closing those it missed the closing of', () => {
    const city = smallCity(13)
    const twin = new Twin(city, policy)
    const [a, b, c] = city.devices
    if (!a || !b || !c) throw new Error('no devices')
    const ticket = (ticketId: string, deviceId: string, severity: 'info' | 'critical'): TicketElement => ({ kind: 'ticket', ticketId, ts: T0, open: true, severity, deviceId })
    twin.apply([ticket('T1', a.id, 'critical'), ticket('T2', b.id, 'info')], T0)
    expect(twin.counts(CITY_ID)?.tickets).toMatchObject({ total: 2, critical: 1, info: 1 })
    // The bus dropped T1's closing and T3's opening, and T2 turned critical: the store says so.
    twin.syncTickets([ticket('T2', b.id, 'critical'), ticket('T3', c.id, 'info')])
    expect(twin.counts(CITY_ID)?.tickets).toMatchObject({ total: 2, critical: 1, info: 1 })
    const open = (id: string) => twin.deviceOpenTickets(twin.deviceIndex(id) ?? -1)
    expect([open(a.id), open(b.id), open(c.id)]).toEqual([0, 1, 1])
  })

  it('counts each device in the special grids it stands in, and lists the members of any grid', () => {
    const city = smallCity(12)
    const twin = new Twin(city, policy)
    const specials = city.grids.filter((g) => g.level === 'special')
    const inSpecials = specials.reduce((n, g) => n + (twin.counts(g.id)?.devices.total ?? 0), 0)
    expect(inSpecials).toBeGreaterThan(0)
    for (const g of specials.slice(0, 20)) expect(twin.devicesIn(g.id).length).toBe(twin.counts(g.id)?.devices.total)
    const district = city.grids.find((g) => g.level === 'district')
    if (!district) throw new Error('no district')
    expect(twin.devicesIn(district.id).length).toBe(twin.counts(district.id)?.devices.total)
    expect(twin.devicesIn(CITY_ID).length).toBe(city.devices.length)
    // A special grid lists exactly the devices that stand in it.
    for (const g of specials.slice(0, 20)) for (const i of twin.devicesIn(g.id)) expect(twin.deviceSpecials(i)).toContain(g.id)
    // A page is the same slice of the same list, with its total, at every level, for devices and cameras.
    const levels = [CITY_ID, ...(['district', 'street', 'community', 'micro', 'special'] as const).map((l) => city.grids.find((g) => g.level === l && twin.devicesIn(g.id).length > 3)?.id ?? -1)]
    expect(levels).not.toContain(-1)
    for (const id of levels) {
      for (const [all, pageOf] of [[twin.devicesIn(id), twin.devicesPage.bind(twin)], [twin.camerasIn(id), twin.camerasPage.bind(twin)]] as const) {
        for (const [from, limit] of [[0, 1], [2, 3], [0, all.length + 5], [all.length, 2]] as const) {
          expect(pageOf(id, from, limit)).toEqual({ items: all.slice(from, from + limit), total: all.length })
        }
      }
    }
  })

  it('reports what changed since it was last asked, once', () => {
    const city = smallCity(13)
    const twin = new Twin(city, policy)
    twin.drainChanges()
    const d = city.devices[0]
    if (!d) throw new Error('no device')
    twin.apply([{ kind: 'connectivity', deviceId: d.id, ts: T0, state: 'connected' }], T0)
    const c = twin.drainChanges()
    expect(c.devices).toEqual([0])
    expect(c.grids).toEqual(expect.arrayContaining([d.microGridId, d.communityId, d.streetId, d.districtId, CITY_ID]))
    expect(twin.drainChanges()).toEqual({ devices: [], cameras: [], grids: [] })
  })
})

describe('silence under late readings', () => {
  /** A twin with the lag on: device 0 (quiet) reported once at T0; device 1 (busy) has not reported yet. */
  function quietAndBusy(): { twin: Twin; busy: { id: string }; interval: number } {
    const city = smallCity(17)
    const twin = new Twin(city, { silentAfterIntervals: 3, maxLagMs: 300_000 })
    const [quiet, busy] = city.devices
    if (!quiet || !busy) throw new Error('no devices')
    twin.apply([{ kind: 'reading', deviceId: quiet.id, ts: T0, values: {} }], T0)
    return { twin, busy, interval: quiet.intervalS * 1000 }
  }

  it('judges silence at the watermark while readings arrive late, and at the clock once they no longer do', () => {
    const { twin, busy, interval } = quietAndBusy()
    // Ten intervals later the store is behind: what arrives now was taken eight intervals ago.
    const now = T0 + 10 * interval
    twin.apply(Array.from({ length: 50 }, (_, k) => ({ kind: 'reading' as const, deviceId: busy.id, ts: now - 8 * interval + k, values: {} })), now)
    expect(twin.lagMs(now)).toBeGreaterThanOrEqual(8 * interval - 50)
    // At the watermark the quiet device has been quiet two intervals, not ten: its readings may be in the queue.
    twin.sweep(now)
    expect(twin.deviceStatus(0)).toBe('online')
    // And the late readings do not make their own device silent as they arrive.
    expect(twin.deviceStatus(1)).toBe('online')
    // Nothing late arrives any more: silence is judged at the clock again.
    twin.sweep(now + 11_000)
    expect(twin.deviceStatus(0)).toBe('silent')
  })

  it('holds silence back while the gateway reports data waiting in it, though what arrives is fresh', () => {
    const { twin, busy, interval } = quietAndBusy()
    // Ten intervals later: the gateway has held connections back for nine, and what gets through is current.
    const now = T0 + 10 * interval
    let heldSince = T0 + interval
    twin.watchIngest({ backlogMs: (t) => (heldSince > 0 ? t - heldSince : 0), shedding: () => false })
    twin.apply([{ kind: 'reading', deviceId: busy.id, ts: now, values: {} }], now)
    expect(twin.lagMs(now)).toBe(9 * interval)
    twin.sweep(now)
    expect(twin.deviceStatus(0)).toBe('online')
    // The gateway has caught up: silence is judged at the clock again.
    heldSince = 0
    twin.sweep(now)
    expect(twin.deviceStatus(0)).toBe('silent')
  })

  it('counts the gateway\'s backlog in the lag up to the cap, and not at all with the lag off', () => {
    const lag = new IngestLag({ maxMs: 60_000 })
    lag.watchBacklog(() => 5_000)
    expect(lag.at(T0)).toBe(5_000)
    lag.observe([{ kind: 'reading', ts: T0 - 7_000 }], T0)
    expect(lag.at(T0)).toBe(7_000)
    lag.watchBacklog(() => 3_600_000)
    expect(lag.at(T0)).toBe(60_000)
    const off = new IngestLag({ maxMs: 0 })
    off.watchBacklog(() => 5_000)
    expect(off.at(T0)).toBe(0)
  })

  it('takes the 90th percentile lag of a batch, so a few readings a device had buffered do not hold silence back, and caps it', () => {
    const lag = new IngestLag({ maxMs: 60_000 })
    const reading = (ts: number) => ({ kind: 'reading', ts })
    lag.observe([...Array.from({ length: 9 }, () => reading(T0 - 100)), reading(T0 - 86_400_000), { kind: 'connectivity', ts: 0 }], T0)
    expect(lag.at(T0)).toBe(100)
    lag.observe(Array.from({ length: 5 }, () => reading(T0 - 3_600_000)), T0 + 1)
    expect(lag.at(T0 + 1)).toBe(60_000)
    expect(lag.at(T0 + 20_000)).toBe(0)
  })

  it('measures the lag from when the gateway took each reading, not from the time a device\'s clock gave it', () => {
    const lag = new IngestLag({ maxMs: 300_000 })
    const now = T0 + 10_000
    // Half the devices three minutes behind, all taken by the gateway 200 ms ago.
    lag.observe(Array.from({ length: 100 }, (_, i) => ({ kind: 'reading', ts: i % 2 ? now - 180_000 : now - 200, receivedAt: now - 200 })), now)
    expect(lag.at(now)).toBe(200)
  })

  it('follows the devices served last, not the median: a fifth of a batch late is the lag', () => {
    const lag = new IngestLag({ maxMs: 300_000 })
    const reading = (ts: number) => ({ kind: 'reading', ts })
    // Under overload most readings arrive within a second, and a fifth have waited 40 s in devices the gateway reads last.
    lag.observe([...Array.from({ length: 80 }, () => reading(T0 - 500)), ...Array.from({ length: 20 }, () => reading(T0 - 40_000))], T0)
    expect(lag.at(T0)).toBe(40_000)
  })
})

describe('ingest degraded', () => {
  /** A twin that holds silence while ingest is 60 s behind or shedding: device 0 reported once at T0, and devices 1-4 report on. */
  function twinOf(): { twin: Twin; interval: number; reporters: string[] } {
    const city = smallCity(19)
    const twin = new Twin(city, { silentAfterIntervals: 3, maxLagMs: 300_000, degradedAfterMs: 60_000 })
    const [quiet, ...rest] = city.devices
    if (!quiet || rest.length < 4) throw new Error('no devices')
    twin.apply([{ kind: 'reading', deviceId: quiet.id, ts: T0, values: {} }], T0)
    return { twin, interval: quiet.intervalS * 1000, reporters: rest.slice(0, 4).map((d) => d.id) }
  }

  it('judges no device silent while the store is stalled, and raises the alarm once and clears it once', () => {
    const { twin, interval, reporters } = twinOf()
    const turns: boolean[] = []
    const onIngest = (h: { degraded: boolean }): void => void turns.push(h.degraded)
    // The store stalls at T0: data waits in the gateway for longer and longer, nothing reaches the twin.
    let stalledSince: number | undefined = T0
    twin.watchIngest({ backlogMs: (now) => (stalledSince === undefined ? 0 : now - stalledSince), shedding: () => false })
    for (let t = T0; t <= T0 + 600_000; t += 1_000) twin.sweep(t, onIngest)
    // Ten minutes: far past the quiet device's silence (3 intervals) and past the lag cap (5 min); yet nothing is judged.
    expect(T0 + 600_000 - 300_000).toBeGreaterThan(T0 + 3 * interval)
    expect(twin.deviceStatus(0)).toBe('online')
    expect(twin.ingestHealth).toMatchObject({ degraded: true, since: T0 + 60_000, shedding: false, spells: 1 })
    expect(twin.ingestHealth.reason).toMatch(/waited 600 s/)
    // The store comes back and everything queued arrives; the reporters are current, the quiet device sent nothing.
    stalledSince = undefined
    const back = T0 + 601_000
    // Calm for half the threshold (30 s) before it counts as recovered: a wait hovering at the line does not flap.
    for (let t = back; t <= back + 29_000; t += 1_000) {
      twin.apply(reporters.map((id) => ({ kind: 'reading' as const, deviceId: id, ts: t, values: {} })), t)
      twin.sweep(t, onIngest)
    }
    expect(turns).toEqual([true])
    expect(twin.ingestHealth.reason).toMatch(/recovering/)
    twin.apply(reporters.map((id) => ({ kind: 'reading' as const, deviceId: id, ts: back + 30_000, values: {} })), back + 30_000)
    twin.sweep(back + 30_000, onIngest)
    expect(turns).toEqual([true, false])
    expect(twin.ingestHealth).toMatchObject({ degraded: false, since: null, reason: null, spells: 1 })
    // Recovered: silence is judged again, and only where it is real.
    expect(twin.deviceStatus(0)).toBe('silent')
    for (let i = 1; i <= 4; i++) expect(twin.deviceStatus(i)).toBe('online')
  })

  it('is not degraded by one device whose readings are old (a slow clock, a replayed buffer): only the system\'s own queueing counts', () => {
    const { twin, interval, reporters } = twinOf()
    const late = reporters[0] as string
    for (let t = T0 + 1_000; t <= T0 + 3 * interval + 5_000; t += 1_000) {
      twin.apply([{ kind: 'reading', deviceId: late, ts: t - 3_600_000, values: {} }], t)
      twin.sweep(t)
    }
    expect(twin.ingestHealth.degraded).toBe(false)
    // Its old readings still move the watermark back (up to the cap), as late data should.
    expect(twin.lagMs(T0 + 3 * interval + 5_000)).toBe(300_000)
  })

  it('carries a degraded spell over to a twin rebuilt in its place', () => {
    const { twin } = twinOf()
    twin.watchIngest({ backlogMs: () => 0, shedding: () => true })
    twin.sweep(T0 + 1_000)
    const rebuilt = twinOf().twin
    rebuilt.adoptIngestHealth(twin.ingestHealth)
    const turns: boolean[] = []
    rebuilt.watchIngest({ backlogMs: () => 0, shedding: () => true })
    rebuilt.sweep(T0 + 2_000, (h) => void turns.push(h.degraded))
    expect(turns).toEqual([])
    expect(rebuilt.ingestHealth).toMatchObject({ degraded: true, since: T0 + 1_000, spells: 1 })
  })

  it('is degraded while a gateway sheds devices, however current the data', () => {
    const { twin, interval } = twinOf()
    let shedding = true
    twin.watchIngest({ backlogMs: () => 0, shedding: () => shedding })
    twin.sweep(T0 + 10 * interval)
    expect(twin.deviceStatus(0)).toBe('online')
    expect(twin.ingestHealth).toMatchObject({ degraded: true, shedding: true })
    expect(twin.ingestHealth.reason).toMatch(/refusing connections/)
    shedding = false
    twin.sweep(T0 + 10 * interval + 1_000)
    expect(twin.ingestHealth.degraded).toBe(true)
    twin.sweep(T0 + 10 * interval + 31_000)
    expect(twin.ingestHealth.degraded).toBe(false)
    expect(twin.deviceStatus(0)).toBe('silent')
  })

  it('is degraded when a fifth of the devices heard from lately go silent at once, and judges none of them silent', () => {
    // Data can wait where no queue of the system sees it: in the devices, their QoS 1 window full.
    // At full city a third of the devices starved that way had been called silent.
    const city = smallCity(19)
    const policy = { silentAfterIntervals: 3, maxLagMs: 0, degradedAfterMs: 60_000, degradedSilentPercent: 20, degradedSilentMin: 50 }
    const twin = new Twin(city, policy)
    // Every other 10-second device starves (580 of 2,193, 26%); the rest report on.
    const starved = new Set(city.devices.filter((d) => d.intervalS === 10).filter((_, i) => i % 2 === 0).map((d) => d.id))
    expect(starved.size / city.devices.length).toBeGreaterThan(0.2)
    const turns: boolean[] = []
    const report = (t: number, who: (id: string) => boolean): void => {
      twin.apply(city.devices.filter((d) => ((t - T0) / 1000) % d.intervalS === 0 && who(d.id)).map((d) => ({ kind: 'reading' as const, deviceId: d.id, ts: t, values: {} })), t)
      twin.sweep(t, (h) => void turns.push(h.degraded))
    }
    for (let t = T0; t <= T0 + 120_000; t += 1_000) report(t, (id) => t === T0 || !starved.has(id))
    expect(twin.counts(CITY_ID)?.devices.silent).toBe(0)
    expect(twin.ingestHealth).toMatchObject({ degraded: true, spells: 1 })
    expect(twin.ingestHealth.reason).toMatch(/580 of 2193 devices heard from lately went silent at once \(26%\)/)
    // They are served again: recovered once calm for half the threshold, and no device was ever called silent.
    for (let t = T0 + 121_000; t <= T0 + 180_000; t += 1_000) report(t, () => true)
    expect(turns).toEqual([true, false])
    expect(twin.counts(CITY_ID)?.devices.silent).toBe(0)
  })

  it('after a restart, the city still reconnecting is ingest degraded, however long ago it was last heard', () => {
    // The system was down two hours; every device disconnected as it stopped, and a third is back so far.
    const city = smallCity(19)
    const twin = new Twin(city, { silentAfterIntervals: 3, maxLagMs: 0, degradedAfterMs: 60_000, degradedSilentPercent: 20, degradedSilentMin: 50 })
    const stop = T0 - 2 * 3_600_000
    twin.apply(city.devices.map((d) => ({ kind: 'connectivity' as const, deviceId: d.id, ts: stop, state: 'disconnected' as const })), T0, true)
    twin.listeningSince = T0
    const back = city.devices.filter((_, i) => i % 3 === 0)
    const sweep = (from: number, to: number): void => {
      for (let t = from; t <= to; t += 1_000) {
        if (t % 5_000 === 0) twin.apply(back.map((d) => ({ kind: 'reading' as const, deviceId: d.id, ts: t, values: {} })), t)
        twin.sweep(t)
      }
    }
    sweep(T0, T0 + 60_000)
    expect(twin.ingestHealth.degraded).toBe(true)
    // Long after the restart (past twin.degradedSilentWindowMs) the ones still away are devices to see to, not the restart.
    sweep(T0 + 61_000, T0 + 800_000)
    expect(twin.ingestHealth.degraded).toBe(false)
  })

  it('a district going silent is devices gone silent, not ingest degraded', () => {
    const city = smallCity(19)
    const twin = new Twin(city, { silentAfterIntervals: 3, maxLagMs: 0, degradedAfterMs: 60_000, degradedSilentPercent: 20, degradedSilentMin: 50 })
    const district = city.devices[0]?.districtId
    const cut = new Set(city.devices.filter((d) => d.districtId === district).map((d) => d.id))
    // More than the minimum, under the share.
    expect(cut.size).toBeGreaterThan(50)
    expect(cut.size / city.devices.length).toBeLessThan(0.2)
    for (let t = T0; t <= T0 + 120_000; t += 1_000) {
      twin.apply(city.devices.filter((d) => ((t - T0) / 1000) % d.intervalS === 0 && (t === T0 || !cut.has(d.id))).map((d) => ({ kind: 'reading' as const, deviceId: d.id, ts: t, values: {} })), t)
      twin.sweep(t)
    }
    expect(twin.ingestHealth.degraded).toBe(false)
    expect(twin.counts(CITY_ID)?.devices.silent).toBe(cut.size)
  })

  it('does not flap at the line: it clears only under half the threshold', () => {
    const m = new IngestHealthMonitor({ degradedAfterMs: 60_000 })
    expect(m.update({ lagMs: 59_999, shedding: false }, T0)).toBe(false)
    expect(m.update({ lagMs: 60_000, shedding: false }, T0 + 1)).toBe(true)
    expect(m.update({ lagMs: 45_000, shedding: false }, T0 + 2)).toBe(false)
    expect(m.state).toMatchObject({ degraded: true, since: T0 + 1 })
    expect(m.update({ lagMs: 29_999, shedding: false }, T0 + 3)).toBe(true)
    expect(m.state).toMatchObject({ degraded: false, since: null, spells: 1 })
    // The silent share: in at its threshold (and its minimum), out under half, once calm for recoverAfterMs.
    const share = new IngestHealthMonitor({ degradedAfterMs: 60_000, silentPercent: 20, silentMin: 50, recoverAfterMs: 30_000 })
    expect(share.update({ lagMs: 0, shedding: false, silent: { overdue: 49, of: 100 } }, T0)).toBe(false)
    expect(share.update({ lagMs: 0, shedding: false, silent: { overdue: 199, of: 1_000 } }, T0)).toBe(false)
    expect(share.update({ lagMs: 0, shedding: false, silent: { overdue: 200, of: 1_000 } }, T0 + 1)).toBe(true)
    expect(share.update({ lagMs: 0, shedding: false, silent: { overdue: 100, of: 1_000 } }, T0 + 2)).toBe(false)
    expect(share.update({ lagMs: 0, shedding: false, silent: { overdue: 99, of: 1_000 } }, T0 + 3)).toBe(false)
    expect(share.update({ lagMs: 0, shedding: false, silent: { overdue: 99, of: 1_000 } }, T0 + 30_002)).toBe(false)
    expect(share.update({ lagMs: 0, shedding: false, silent: { overdue: 99, of: 1_000 } }, T0 + 30_003)).toBe(true)
    expect(share.state).toMatchObject({ degraded: false, spells: 1 })
    const off = new IngestHealthMonitor({ degradedAfterMs: 0 })
    expect(off.update({ lagMs: 3_600_000, shedding: true }, T0)).toBe(false)
    expect(off.state.degraded).toBe(false)
  })
})
