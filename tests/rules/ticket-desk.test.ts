// The ticket desk on its own: a raise becomes a ticket stored before it goes
// on the bus, and what the rule runner has judged is stored only after the
// tickets of it. While the store refuses the tickets, the runner's state is
// given back, not stored ahead of them, and goes with the next flush that
// stores them. Real chDB underneath; the fault is injected in front of it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Element } from '../../lib/bus/elements.ts'
import { loadConfig } from '../../lib/config.ts'
import { loadCatalogue } from '../../rules/catalogue/catalogue.ts'
import { rulesConfig } from '../../rules/config.ts'
import type { Raise } from '../../rules/kinds/types.ts'
import { TicketDesk, type JudgedState } from '../../rules/ticket-desk.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { faultyClient } from '../helpers.ts'
import { openSystem, type TestSystem } from '../system.ts'

const city = generateCity({ seed: 36, scale: 0.005 })
let sys: TestSystem
let storeDown = false

beforeAll(async () => {
  sys = await openSystem(city, { sweepIntervalMs: 3_600_000 })
})

afterAll(async () => {
  storeDown = false
  await sys?.close()
})

/** The runner's side of the flush, as a log of what the desk asked of it. */
class StateLog implements JudgedState<number> {
  next = 1
  readonly calls: string[] = []
  settled(): undefined {
    this.calls.push('settled')
    return undefined
  }

  take(): number {
    const s = this.next++
    this.calls.push(`take ${s}`)
    return s
  }

  async store(s: number): Promise<void> {
    this.calls.push(`store ${s}`)
  }

  putBack(s: number): void {
    this.calls.push(`putBack ${s}`)
  }
}

function raiseFor(i: number): Raise {
  const d = city.devices[i]
  if (!d) throw new Error(`the test city has no device ${i}`)
  const place = { microGridId: d.microGridId, communityId: d.communityId, streetId: d.streetId, districtId: d.districtId, lon: d.lon, lat: d.lat }
  return { type: 'raise', ruleId: 'test-desk', key: `test-desk|${d.id}`, ticketType: loadCatalogue().types[0]?.code ?? '', severity: 'warning', subject: { deviceId: d.id }, place, ts: Date.now(), title: 'test', evidence: {}, ticket: true }
}

/** A desk writing through a client that refuses inserts while `storeDown`. */
async function openDesk(): Promise<TicketDesk> {
  const desk = new TicketDesk({
    client: faultyClient(sys.store.client, () => storeDown, ['insert']), bus: sys.bus, catalogue: loadCatalogue(), config: loadConfig(rulesConfig, { env: {}, overrides: {} }),
    clock: Date.now, modeAt: () => 'normal', placeNames: (p) => ({ districtId: p.districtId, streetId: p.streetId }),
  })
  await desk.start()
  return desk
}

async function storedTickets(ruleId: string): Promise<number> {
  const rs = await sys.store.client.query({ query: 'SELECT count(DISTINCT id) FROM tickets WHERE rule_id = {r:String}', query_params: { r: ruleId }, format: 'JSONCompactEachRow' })
  const [[n] = [0]] = await rs.json<[number | string]>()
  return Number(n)
}

describe('the ticket desk', () => {
  it('stores the tickets, then puts them on the bus, then stores what the runner judged; refused, it gives the state back and tries both again', async () => {
    const desk = await openDesk()
    const state = new StateLog()
    desk.storeAfterTickets(state)
    const onBus: Element[] = []
    const sub = sys.bus.subscribe('desk-test', (batch) => void onBus.push(...batch.filter((e) => e.kind === 'ticket')))
    try {
      storeDown = true
      desk.take([raiseFor(0), raiseFor(1)])
      expect(desk.pending).toBeGreaterThan(0)
      await desk.flush()
      // Nothing stored: the tickets wait, nothing went on the bus, and the state taken with them came back unstored.
      expect(state.calls).toEqual(['settled', 'take 1', 'putBack 1'])
      expect(desk.pending).toBeGreaterThan(0)
      expect(onBus).toEqual([])
      expect(Number(desk.stats().storeFailures)).toBe(1)

      storeDown = false
      await desk.flush()
      expect(state.calls).toEqual(['settled', 'take 1', 'putBack 1', 'settled', 'take 2', 'store 2'])
      expect(desk.pending).toBe(0)
      expect(await storedTickets('test-desk')).toBe(2)
      await sub.idle(Date.now() + 5_000)
      // Each change of a ticket goes on the bus (its creation, its direct dispatch), open.
      const ids = new Set([0, 1].map((i) => desk.book.byKey(raiseFor(i).key)?.id))
      expect(new Set(onBus.map((e) => (e.kind === 'ticket' ? e.ticketId : '')))).toEqual(ids)
      expect(onBus.every((e) => e.kind === 'ticket' && e.open)).toBe(true)

      // A raise of a key with an open ticket is the same ticket: nothing new to store but the occurrence.
      desk.take([raiseFor(0)])
      await desk.flush()
      expect(await storedTickets('test-desk')).toBe(2)
      expect(state.calls.at(-1)).toBe('store 3')
    } finally {
      sub.close()
      await desk.stop(Date.now() + 5_000)
    }
  })

  it('stores an operator action before it answers, and says so when the store refuses it', async () => {
    const desk = await openDesk()
    try {
      const raise = { ...raiseFor(2), ruleId: 'test-desk-act', key: 'test-desk-act|2' }
      desk.take([raise])
      await desk.flush()
      const ticket = desk.book.byKey(raise.key)
      if (!ticket) throw new Error('no ticket raised')
      storeDown = true
      const refused = await desk.act(ticket.id, 'comment', 'tester', { note: 'while the store is away' })
      expect(refused).toMatchObject({ ok: false, status: 503, code: 'STORE_UNAVAILABLE' })
      expect(desk.hasPending(ticket.id)).toBe(true)
      storeDown = false
      const ok = await desk.act(ticket.id, 'comment', 'tester', { note: 'store back' })
      expect(ok.ok).toBe(true)
      expect(desk.pending).toBe(0)
      const rs = await sys.store.client.query({ query: 'SELECT count() FROM ticket_history WHERE ticket_id = {t:String} AND action = \'comment\'', query_params: { t: ticket.id }, format: 'JSONCompactEachRow' })
      const [[n] = [0]] = await rs.json<[number | string]>()
      expect(Number(n)).toBe(2)
    } finally {
      storeDown = false
      await desk.stop(Date.now() + 5_000)
    }
  })
})
