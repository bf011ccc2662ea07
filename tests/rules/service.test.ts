// The rules as they run in `citytwin start`: real chDB, the live twin on the
// in-process bus, real HTTP clients. A reading becomes a ticket, the ticket
// reaches the twin and the API, operators act on it, it survives a restart,
// a complaint posted over Open311 is matched to it, a mode switch changes
// a threshold, fire and gas reach the linkage webhook, and a broken rule
// file is refused while the old rules run on.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Validator } from '@seriousme/openapi-schema-validator'
import { loadConfig } from '../../lib/config.ts'
import { rulesConfig, type RulesConfig } from '../../rules/config.ts'
import { SHIPPED_RULES_DIR } from '../../rules/loader.ts'
import type { Ticket } from '../../rules/tickets/lifecycle.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { runCli, tempDir } from '../helpers.ts'
import { openSystem, startApi, startRules, type TestSystem } from '../system.ts'
import type { ApiServer } from '../../twin/api/server.ts'
import type { RulesService } from '../../rules/service.ts'

const OPERATOR = 'operator-token-0123456789'
const VIEWER = 'viewer-token-0123456789'
const ADMIN = 'admin-token-0123456789'
const API_KEY = 'hotline-12345-key'
const MIN = 60_000
const city = generateCity({ seed: 21, scale: 0.01 })
const ofType = (t: string) => city.devices.filter((d) => d.type === t)
const water = ofType('water_level')
const gas = ofType('gas')

let sys: TestSystem
let rules: RulesService
let api: ApiServer
let hook: Server
const pushed: unknown[] = []
let now = Date.now()
let cfg: RulesConfig
const rulesDir = join(tempDir(), 'rules')

async function call<T>(method: string, path: string, token?: string, body?: unknown, form = false): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {}
  let payload: string | undefined
  if (body !== undefined) {
    headers['content-type'] = form ? 'application/x-www-form-urlencoded' : 'application/json'
    payload = form ? new URLSearchParams(body as Record<string, string>).toString() : JSON.stringify(body)
  }
  const res = await fetch(`${api.url}${path}`, { method, headers, ...(payload === undefined ? {} : { body: payload }) })
  return { status: res.status, body: (await res.json()) as T }
}

const report = (deviceId: string, ts: number, values: Record<string, number>): Promise<void> => sys.report(deviceId, ts, values)

/** Reports a value once a minute for `minutes`, moving the rules' clock along. */
async function hold(deviceId: string, values: Record<string, number>, minutes: number): Promise<void> {
  for (let i = 0; i <= minutes; i++) {
    await report(deviceId, now, values)
    await rules.tick()
    if (i < minutes) now += MIN
  }
}

async function restartRules(): Promise<void> {
  rules = await startRules(sys, cfg, () => now)
}

async function restartApi(): Promise<void> {
  api = await startApi(sys, rules, { tokens: [{ name: 'op-wang', role: 'operator', token: OPERATOR }, { name: 'wall', role: 'viewer', token: VIEWER }, { name: 'chief', role: 'admin', token: ADMIN }] })
}

const openFor = (deviceId: string): Ticket | undefined => [...rules.book.tickets].find((t) => t.subject !== undefined && 'deviceId' in t.subject && t.subject.deviceId === deviceId && t.status !== 'closed')

beforeAll(async () => {
  hook = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      pushed.push(JSON.parse(body))
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r))
  mkdirSync(rulesDir, { recursive: true })
  copyFileSync(join(SHIPPED_RULES_DIR, 'city.yaml'), join(rulesDir, 'city.yaml'))
  cfg = loadConfig(rulesConfig, { env: {}, overrides: { dir: rulesDir, tickMs: 3_600_000, linkageWebhookUrl: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/linkage`, open311ApiKeys: API_KEY } })
  sys = await openSystem(city, { sweepIntervalMs: 3_600_000 })
  await restartRules()
  await restartApi()
})

afterAll(async () => {
  await api?.stop(Date.now() + 2_000)
  await rules?.stop()
  await sys?.close()
  hook?.close()
})

describe('a reading becomes a ticket', () => {
  it('water above 30 cm for five minutes: one ticket, dispatched straight to the district drainage office, stored and on the map', async () => {
    const d = water[0]
    if (!d) throw new Error('no water gauge')
    await hold(d.id, { level_cm: 10 }, 1)
    await hold(d.id, { level_cm: 42 }, 4)
    expect(openFor(d.id)).toBeUndefined()
    await hold(d.id, { level_cm: 45 }, 1)
    const t = openFor(d.id)
    expect(t).toMatchObject({ status: 'dispatched', type: 'waterlogging', ruleId: 'waterlogging', unitId: `drainage@d${d.districtId}`, occurrences: 1, origin: 'proactive' })
    // Still high: no new raise. Down, then up again for five minutes while
    // the ticket is open: one more occurrence of the same ticket.
    await hold(d.id, { level_cm: 46 }, 2)
    expect(openFor(d.id)?.occurrences).toBe(1)
    await hold(d.id, { level_cm: 15 }, 1)
    expect(openFor(d.id)?.signalActive).toBe(false)
    await hold(d.id, { level_cm: 44 }, 5)
    expect(openFor(d.id)).toMatchObject({ occurrences: 2, signalActive: true })
    // Nobody signed it within five minutes: escalated, flagged for supervision.
    expect(openFor(d.id)).toMatchObject({ status: 'escalated', supervised: true, slaBreaches: ['sign'] })
    expect([...rules.book.tickets].filter((x) => x.key === t?.key)).toHaveLength(1)
    // Stored: the ticket row at its latest version, and its history.
    const rs = await sys.store.client.query({ query: `SELECT status, toUInt32(occurrences) AS occurrences, unit FROM tickets FINAL WHERE id = {id:String}`, query_params: { id: t?.id ?? '' }, format: 'JSONEachRow' })
    expect(await rs.json()).toEqual([{ status: 'escalated', occurrences: 2, unit: `drainage@d${d.districtId}` }])
    // On the map: the twin counts it in the device's micro-grid and every grid above.
    await new Promise((r) => setImmediate(r))
    expect(sys.live.twin.counts(d.microGridId)?.tickets.warning).toBe(1)
    expect(sys.live.twin.counts(d.districtId)?.tickets.total).toBeGreaterThanOrEqual(1)
  })
})

describe('operators act on tickets over the API', () => {
  it('lists open tickets by SLA; a viewer cannot act; illegal moves are refused; a paper-only resolve is reopened; a real one is verified', async () => {
    const d = water[0]
    const t = openFor(d?.id ?? '')
    if (!d || !t) throw new Error('no ticket from the previous test')
    const list = await call<{ items: (Ticket & { slaLeftMs: number; actions: string[] })[] }>('GET', '/api/tickets?open=true&type=waterlogging', VIEWER)
    expect(list.status).toBe(200)
    expect(list.body.items.find((x) => x.id === t.id)?.actions).toEqual(['dispatch', 'sign', 'resolve', 'comment'])
    expect((await call('POST', `/api/tickets/${t.id}/actions`, VIEWER, { action: 'sign' })).status).toBe(403)
    expect((await call('POST', `/api/tickets/${t.id}/actions`, undefined, { action: 'sign' })).status).toBe(401)
    const illegal = await call<{ error: { code: string; message: string } }>('POST', `/api/tickets/${t.id}/actions`, OPERATOR, { action: 'close' })
    expect(illegal).toMatchObject({ status: 409, body: { error: { code: 'TICKET_ILLEGAL_TRANSITION' } } })
    expect((await call('POST', `/api/tickets/${t.id}/actions`, OPERATOR, { action: 'fly' })).status).toBe(400)
    const signed = await call<{ ticket: Ticket }>('POST', `/api/tickets/${t.id}/actions`, OPERATOR, { action: 'sign' })
    expect(signed).toMatchObject({ status: 200, body: { ticket: { status: 'signed', signedAt: now } } })
    // Resolved while the water is still high: formal-only, reopened and dispatched again.
    const paper = await call<{ ticket: Ticket }>('POST', `/api/tickets/${t.id}/actions`, OPERATOR, { action: 'resolve' })
    expect(paper.body.ticket).toMatchObject({ status: 'dispatched', formalOnly: 1, supervised: true })
    await call('POST', `/api/tickets/${t.id}/actions`, OPERATOR, { action: 'sign' })
    // The water goes down below the clear level: resolving now is verified by the data.
    await hold(d.id, { level_cm: 12 }, 1)
    const real = await call<{ ticket: Ticket }>('POST', `/api/tickets/${t.id}/actions`, OPERATOR, { action: 'resolve' })
    expect(real.body.ticket).toMatchObject({ status: 'verified', signalActive: false })
    const history = await call<{ history: { action: string; actor: string; to: string }[] }>('GET', `/api/tickets/${t.id}`, VIEWER)
    expect(history.body.history.map((h) => h.action)).toEqual(['create', 'dispatch', 'signal', 'escalate', 'occur', 'sign', 'resolve', 'reopen', 'dispatch', 'sign', 'signal', 'resolve', 'verify'])
    expect(history.body.history.find((h) => h.action === 'sign')?.actor).toBe('op-wang')
    expect(history.body.history.find((h) => h.action === 'escalate')?.actor).toBe('system:sla')
    // Off the map once verified.
    await new Promise((r) => setImmediate(r))
    expect(sys.live.twin.counts(d.microGridId)?.tickets.total).toBe(0)
  })
})

describe('restart', () => {
  it('a new rules service reads back the tickets and the pending durations', async () => {
    const d = water[1]
    if (!d) throw new Error('no second gauge')
    await hold(d.id, { level_cm: 50 }, 3) // three of the five minutes
    const before = [...rules.book.tickets].map((t) => [t.id, t.status, t.version])
    await rules.stop()
    await restartRules()
    expect([...rules.book.tickets].map((t) => [t.id, t.status, t.version])).toEqual(before)
    expect(openFor(d.id)).toBeUndefined()
    await api.stop(Date.now() + 1_000)
    await restartApi()
    // Five minutes after the first high reading, not five after the restart.
    await hold(d.id, { level_cm: 50 }, 2)
    expect(openFor(d.id)).toMatchObject({ type: 'waterlogging', status: 'dispatched' })
  })
})

describe('Open311 GeoReport v2', () => {
  it('serves the catalogue as services, with the specification field names', async () => {
    const s = await call<Record<string, unknown>[]>('GET', '/open311/v2/services.json')
    expect(s.status).toBe(200)
    expect(s.body.length).toBeGreaterThanOrEqual(48)
    expect(Object.keys(s.body[0] ?? {}).sort()).toEqual(['description', 'group', 'keywords', 'metadata', 'service_code', 'service_name', 'type'])
    expect((await call<unknown>('GET', '/open311/v2/services/waterlogging.json')).body).toEqual({ service_code: 'waterlogging', attributes: [] })
    expect((await call<{ code: number }[]>('GET', '/open311/v2/services/nope.json'))).toMatchObject({ status: 404, body: [{ code: 404 }] })
  })

  it('matches a complaint to the proactive ticket already in hand, dispatches one that matches none, and reports the share', async () => {
    const d = water[1]
    const t = openFor(d?.id ?? '')
    if (!d || !t) throw new Error('no ticket from the restart test')
    now += 7 * MIN
    const refused = await call<{ code: number; description: string }[]>('POST', '/open311/v2/requests.json', undefined, { api_key: 'wrong', service_code: 'waterlogging', lat: String(d.lat), long: String(d.lon) }, true)
    expect(refused).toMatchObject({ status: 403, body: [{ code: 403 }] })
    const missing = await call<{ code: number; description: string }[]>('POST', '/open311/v2/requests.json', undefined, { api_key: API_KEY, service_code: 'waterlogging', address_string: '文化路' }, true)
    expect(missing.status).toBe(400)
    expect(missing.body[0]?.description).toMatch(/lat and long/)
    const near = await call<{ service_request_id: string; service_notice: string }[]>('POST', '/open311/v2/requests.json', undefined, {
      api_key: API_KEY, service_code: 'waterlogging', lat: String(d.lat + 0.0005), long: String(d.lon), description: '路口积水很深', address_string: '文化路与农业路交叉口', phone: '13800000000',
    }, true)
    expect(near.status).toBe(201)
    expect(near.body[0]?.service_notice).toContain(t.id)
    expect(rules.book.get(t.id)?.complaints).toBe(1)
    // A bin in another part of the city: nothing in hand, so a ticket of its own.
    const far = city.devices.find((x) => x.communityId !== d.communityId && Math.abs(x.lat - d.lat) > 0.05) ?? city.devices[0]
    const other = await call<{ service_request_id: string; service_notice: string }[]>('POST', '/open311/v2/requests.json', undefined, { api_key: API_KEY, service_code: 'bin_overflow', lat: String(far?.lat), long: String(far?.lon), description: '垃圾满了' }, true)
    expect(other.status).toBe(201)
    expect(other.body[0]?.service_notice).toMatch(/dispatched as ticket T-/)
    const stats = await call<{ complaints: number; matched: number; matchedShare: number; leadMs: { p50: number } }>('GET', '/api/complaints/stats', VIEWER)
    expect(stats.body).toMatchObject({ complaints: 2, matched: 1, matchedShare: 0.5, leadMs: { p50: now - t.createdAt } })
    const listed = await call<Record<string, unknown>[]>('GET', '/open311/v2/requests.json?status=open')
    const ids = listed.body.map((r) => r.service_request_id)
    expect(ids).toEqual(expect.arrayContaining([t.id, near.body[0]?.service_request_id, other.body[0]?.service_request_id]))
    const one = listed.body.find((r) => r.service_request_id === t.id)
    expect(Object.keys(one ?? {}).sort()).toEqual(['address', 'address_id', 'agency_responsible', 'description', 'expected_datetime', 'lat', 'long', 'media_url', 'requested_datetime', 'service_code', 'service_name', 'service_notice', 'service_request_id', 'status', 'status_notes', 'updated_datetime', 'zipcode'])
    expect((await call<unknown[]>('GET', `/open311/v2/requests/${near.body[0]?.service_request_id ?? ''}.json`)).body).toMatchObject([{ status: 'open', service_code: 'waterlogging' }])
    // What a complainant wrote and where is personal: not for anyone without a token or api_key; the contact never.
    const nearId = near.body[0]?.service_request_id ?? ''
    const anonymous = listed.body.find((r) => r.service_request_id === nearId)
    expect(anonymous).toMatchObject({ description: '', address: '', lat: null, long: null, status: 'open', service_code: 'waterlogging' })
    expect(JSON.stringify(listed.body)).not.toContain('13800000000')
    const withKey = await call<Record<string, unknown>[]>('GET', `/open311/v2/requests.json?status=open&api_key=${API_KEY}`)
    expect(withKey.body.find((r) => r.service_request_id === nearId)).toMatchObject({ description: '路口积水很深', address: '文化路与农业路交叉口', lat: d.lat + 0.0005, long: d.lon })
    expect(JSON.stringify(withKey.body)).not.toContain('13800000000')
    expect((await call<Record<string, unknown>[]>('GET', `/open311/v2/requests.json?api_key=wrong`)).body.find((r) => r.service_request_id === nearId)).toMatchObject({ description: '' })
    expect((await call<Record<string, unknown>[]>('GET', `/open311/v2/requests/${nearId}.json`)).body[0]).toMatchObject({ description: '', lat: null })
    expect((await call<Record<string, unknown>[]>('GET', `/open311/v2/requests/${nearId}.json`, VIEWER)).body[0]).toMatchObject({ description: '路口积水很深' })
    // A complaint that matched nothing has a ticket of its own, at the complainant's point: that place is personal too.
    const ownTicket = /ticket (T-\S+)/.exec(other.body[0]?.service_notice ?? '')?.[1] ?? ''
    expect(ownTicket).not.toBe('')
    expect(listed.body.find((r) => r.service_request_id === ownTicket)).toMatchObject({ lat: null, long: null })
    expect((await call<Record<string, unknown>[]>('GET', `/open311/v2/requests/${ownTicket}.json`)).body[0]).toMatchObject({ lat: null, long: null })
    expect((await call<Record<string, unknown>[]>('GET', `/open311/v2/requests/${ownTicket}.json?api_key=${API_KEY}`)).body[0]).toMatchObject({ lat: far?.lat, long: far?.lon })
    // A proactive ticket's place is the sensor's, not a person's: shown to anyone.
    expect(typeof one?.lat).toBe('number')
    // A key of the right length in other characters is a wrong key, not a fault.
    expect((await call('GET', `/open311/v2/requests.json?api_key=${encodeURIComponent('é'.repeat(API_KEY.length))}`)).status).toBe(200)
  })
})

describe('the audit trail', () => {
  it('keeps every change and refused attempt made through the API: who, from where, on what, what was asked; complaints without their words', async () => {
    type Entry = { actor: string; role: string; address: string; method: string; route: string; target: string; status: number; detail: string }
    const audit = async (): Promise<Entry[]> => (await call<{ items: Entry[] }>('GET', '/api/audit?limit=1000', ADMIN)).body.items
    await api.flushAudit() // rows go to the store in batches of a second
    expect((await audit()).length).toBeGreaterThan(3)
    const items = await audit()
    const acted = items.find((e) => e.route === 'POST /api/tickets/{id}/actions' && e.actor === 'op-wang' && e.status === 200)
    expect(acted).toMatchObject({ role: 'operator', address: '127.0.0.1', method: 'POST' })
    expect(acted?.target).toMatch(/^id=T-/)
    expect(JSON.parse(acted?.detail ?? '{}')).toHaveProperty('action')
    // A viewer's refused attempt is kept too.
    expect(items.find((e) => e.route === 'POST /api/tickets/{id}/actions' && e.actor === 'wall')).toMatchObject({ status: 403, role: 'viewer' })
    // A complaint posted with an api_key: who and when, not what the complainant wrote.
    const complaint = items.find((e) => e.route === 'POST /open311/v2/requests.json' && e.status === 201)
    expect(complaint).toMatchObject({ actor: 'open311-client', detail: '' })
    expect(JSON.stringify(items)).not.toContain('13800000000')
    // Reads are not audited, and the trail is for admins.
    expect(items.some((e) => e.method === 'GET')).toBe(false)
    expect((await call('GET', '/api/audit', OPERATOR)).status).toBe(403)
  })
})

describe('complaint ids', () => {
  it('are distinct for complaints that arrive at once, right after a restart', async () => {
    await rules.stop()
    await restartRules()
    await api.stop(Date.now() + 1_000)
    await restartApi()
    const d = city.devices[5]
    if (!d) throw new Error('no device')
    // The first complaints after a restart each asked the store for the day's last number, and took the same next one.
    const posted = await Promise.all(Array.from({ length: 6 }, (_, k) => call<{ service_request_id: string }[]>('POST', '/open311/v2/requests.json', undefined, {
      api_key: API_KEY, service_code: 'bin_overflow', lat: String(d.lat + k * 0.01), long: String(d.lon), description: `垃圾满了 ${k}`,
    }, true)))
    expect(posted.map((p) => p.status)).toEqual(Array(6).fill(201))
    const ids = posted.map((p) => p.body[0]?.service_request_id)
    expect(new Set(ids).size).toBe(6)
  })
})

describe('operating modes', () => {
  it('an emergency in a district lowers the waterlogging line there, and survives a restart', async () => {
    const d = water.find((x) => x.districtId !== water[0]?.districtId && x.districtId !== water[1]?.districtId) ?? water[2]
    if (!d) throw new Error('no gauge')
    expect((await call('POST', '/api/modes', VIEWER, { mode: 'emergency', districtId: d.districtId })).status).toBe(403)
    const set = await call<{ inForce: string }>('POST', '/api/modes', OPERATOR, { mode: 'emergency', districtId: d.districtId, note: '暴雨红色预警' })
    expect(set).toMatchObject({ status: 200, body: { inForce: 'emergency' } })
    // 25 cm for a minute: nothing in normal mode, a ticket in an emergency.
    await hold(d.id, { level_cm: 25 }, 1)
    expect(openFor(d.id)).toMatchObject({ mode: 'emergency' })
    await rules.stop()
    await restartRules()
    expect(rules.modeAt(d.districtId)).toBe('emergency')
    expect(rules.modeAt(0)).toBe('normal')
    await api.stop(Date.now() + 1_000)
    await restartApi()
    const modes = await call<{ city: string; districts: { id: number; mode: string }[] }>('GET', '/api/modes', VIEWER)
    expect(modes.body).toMatchObject({ city: 'normal', districts: [{ id: d.districtId, mode: 'emergency' }] })
  })
})

describe('one-key linkage', () => {
  it('a gas leak is pushed to 119 through the outbox', async () => {
    const g = gas[0]
    if (!g) throw new Error('no gas detector')
    for (let i = 0; i < 3; i++) {
      await report(g.id, now, { ch4_pct_lel: 35 })
      now += 10_000
    }
    await rules.tick()
    await rules.tick()
    const t = openFor(g.id)
    expect(t).toMatchObject({ type: 'gas_leak', linkage: ['119'], unitId: 'gas-company' })
    expect(pushed).toContainEqual(expect.objectContaining({ id: `${t?.id ?? ''}:119`, target: '119', ticketId: t?.id, type: 'gas_leak' }))
    expect(rules.stats()).toMatchObject({ linkage: { sent: 1, failed: 0 } })
  })
})

describe('the OpenAPI document', () => {
  it('lists the ticket, mode, rule and Open311 routes and is valid OpenAPI 3.1', async () => {
    const doc = await call<{ paths: Record<string, Record<string, unknown>> }>('GET', '/api/openapi.json')
    for (const r of api.router.routes) expect(doc.body.paths[r.path]?.[r.method.toLowerCase()], `${r.method} ${r.path}`).toBeDefined()
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/api/tickets', '/api/tickets/{id}/actions', '/api/modes', '/open311/v2/requests.json']))
    const result = await new Validator().validate(doc.body)
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([])
  })
})

describe('operator CLI', () => {
  it('lists tickets, comments on one, and shows its history through the API', async () => {
    const list = await runCli(['tickets', 'list', '--api', api.url, '--json'])
    expect(list.code).toBe(0)
    const lines = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; type: string })
    const gasTicket = lines.find((t) => t.type === 'gas_leak')
    expect(gasTicket).toBeDefined()
    const refused = await runCli(['tickets', 'act', gasTicket?.id ?? '', 'comment', '--note', '已联系燃气集团', '--api', api.url, '--token', VIEWER])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain('403')
    const done = await runCli(['tickets', 'act', gasTicket?.id ?? '', 'comment', '--note', '已联系燃气集团', '--api', api.url, '--token', OPERATOR])
    expect(done).toMatchObject({ code: 0, stdout: `${gasTicket?.id ?? ''} is dispatched\n` })
    // Returned by the gas company, dispatched by the desk to another unit, routed to the ticket's district.
    expect((await runCli(['tickets', 'act', gasTicket?.id ?? '', 'return', '--note', '户内管道，非本单位', '--api', api.url, '--token', OPERATOR])).code).toBe(0)
    const redirected = await runCli(['tickets', 'act', gasTicket?.id ?? '', 'dispatch', '--unit', 'emergency-management', '--json', '--api', api.url, '--token', OPERATOR])
    const g = gas[0]
    expect(JSON.parse(redirected.stdout)).toMatchObject({ status: 'dispatched', unitId: `emergency-management@d${g?.districtId ?? 0}`, returns: 1 })
    expect((await runCli(['tickets', 'act', gasTicket?.id ?? '', 'dispatch', '--unit', 'ghostbusters', '--api', api.url, '--token', OPERATOR])).stderr).toContain('TICKET_')
    const shown = await runCli(['tickets', 'show', gasTicket?.id ?? '', '--api', api.url])
    expect(shown.stdout).toMatch(/comment\s+op-wang\s+dispatched -> dispatched\s+已联系燃气集团/)
    const mode = await runCli(['mode', 'set', 'holiday', '--for-min', '60', '--note', '国庆', '--api', api.url, '--token', OPERATOR])
    expect(mode).toMatchObject({ code: 0, stdout: expect.stringMatching(/^holiday in force/) as unknown })
  })
})

describe('rule files', () => {
  it('a broken file is refused with its path and the old rules run on; a good change is taken', async () => {
    writeFileSync(join(rulesDir, 'broken.yaml'), 'rules:\n  - { id: x, kind: threshold, title: x, ticketType: waterlogging, deviceTypes: [water_level], metric: level_mm, above: 1 }\n')
    expect(rules.reload()).toBe(false)
    expect(rules.lastReload.error).toContain('broken.yaml: rules[0].metric: water_level devices send no metric "level_mm"')
    expect(rules.engine.rules.map((r) => r.id)).toContain('waterlogging')
    const reload = await call<{ error: { code: string } }>('POST', '/api/admin/rules/reload', OPERATOR)
    expect(reload.status).toBe(403)
    writeFileSync(join(rulesDir, 'broken.yaml'), 'rules:\n  - { id: deep-water, kind: threshold, title: deep, ticketType: underpass_flooding, deviceTypes: [water_level], metric: level_cm, above: 80 }\n')
    expect(rules.reload()).toBe(true)
    expect(rules.engine.rules.map((r) => r.id)).toContain('deep-water')
  })
})
