// The API's own thread (twin/api/front): it answers the twin's reads and
// the viewer's files while the main thread is busy, passes everything else
// on, believes no client about who or where it is, never answers from a
// twin older than the main thread's, and shares the port's fate (a port
// taken is the start's error).
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { MemoryBus } from '../../lib/bus/bus.ts'
import { loadConfig } from '../../lib/config.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { writeCity } from '../../registry/city-store.ts'
import { apiConfig } from '../../twin/api/config.ts'
import { passedHeaders } from '../../twin/api/front/proxy.ts'
import { CALLER_HEADER, PEER_HEADER } from '../../twin/api/front/protocol.ts'
import { ApiServer } from '../../twin/api/server.ts'
import { twinConfig } from '../../twin/state/config.ts'
import { LiveTwin } from '../../twin/state/live-twin.ts'
import { openMigratedStore, type Store } from '../../store/index.ts'
import { tempDir } from '../helpers.ts'

const ADMIN = 'admin-token-0123456789'
const VIEWER = 'viewer-token-0123456789'
const city = generateCity({ seed: 23, scale: 0.01 })
const viewerDir = tempDir('citytwin-viewer-')
let store: Store
let live: LiveTwin
let api: ApiServer

const config = (overrides: Record<string, unknown> = {}) =>
  loadConfig(apiConfig, { env: {}, overrides: { port: 0, tokens: [{ name: 'ops-admin', role: 'admin', token: ADMIN }, { name: 'wall', role: 'viewer', token: VIEWER }], ...overrides } })

beforeAll(async () => {
  const opened = await openMigratedStore({ env: {} }, { dataDir: join(tempDir(), 'db') })
  store = opened.store
  await writeCity(store.client, city, opened.writerCfg)
  live = new LiveTwin({ client: store.client, bus: new MemoryBus(), config: { ...twinConfig.schema.parse({}), sweepIntervalMs: 200, checkpointIntervalMs: 3_600_000 } })
  await live.start()
  writeFileSync(join(viewerDir, 'index.html'), '<!doctype html><div id="app"></div>')
  api = new ApiServer({ config: config(), client: store.client, twin: live, staticDir: viewerDir })
  await api.start()
})

afterAll(async () => {
  await api?.stop(Date.now() + 2_000)
  await live?.stop()
  await store?.close()
})

const call = (path: string, init: RequestInit & { token?: string } = {}) =>
  fetch(`${api.url}${path}`, { ...init, headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...(init.headers as Record<string, string> | undefined) } })

describe('the API thread', () => {
  it('answers the twin\'s reads and the viewer\'s files while the main thread is busy, and the rest once it is free', async () => {
    const out = tempDir('citytwin-thread-')
    const file = (name: string) => join(out, `${name}.json`)
    // Another process asks, so that asking needs nothing of this (blocked) thread. Each answer is written
    // whole and then renamed into place: this thread polls for the file, and could see it created but empty.
    const ask = (name: string, path: string) =>
      `fetch(${JSON.stringify(api.url + path)}, { headers: { authorization: 'Bearer ${VIEWER}' } }).then(async (r) => { fs.writeFileSync(${JSON.stringify(file(name) + '.part')}, JSON.stringify({ status: r.status, body: await r.text() })); fs.renameSync(${JSON.stringify(file(name) + '.part')}, ${JSON.stringify(file(name))}) })`
    const child = spawn(process.execPath, ['-e', `const fs = require('node:fs'); ${ask('health', '/api/health')}; ${ask('city', '/api/city')}; ${ask('grid', `/api/grids/${city.grids.find((g) => g.level === 'community')?.id}`)}; ${ask('page', '/')}`], { stdio: 'ignore' })
    const exited = new Promise((resolve) => child.on('exit', resolve))
    // The main thread busy (bounded), until the thread's answers are in.
    const until = Date.now() + 60_000
    const answered = (): boolean => ['city', 'grid', 'page'].every((n) => existsSync(file(n)))
    while (!answered() && Date.now() < until) { /* busy, as the main thread is at full city */ }
    const healthMeanwhile = existsSync(file('health'))
    expect(answered()).toBe(true)
    // /api/health is the main thread's own: it could not answer while busy.
    expect(healthMeanwhile).toBe(false)
    const read = (n: string) => JSON.parse(readFileSync(file(n), 'utf8')) as { status: number; body: string }
    expect(read('city').status).toBe(200)
    expect(JSON.parse(read('city').body)).toMatchObject({ city: { devices: { total: city.devices.length } }, ingest: { degraded: false } })
    expect(read('grid').status).toBe(200)
    expect(read('page')).toMatchObject({ status: 200, body: expect.stringContaining('<div id="app">') as unknown })
    await exited
    expect(read('health')).toMatchObject({ status: 200 })
    expect(JSON.parse(read('health').body)).toMatchObject({ ok: true })
  })

  it('answers from the main thread\'s state as it is: a change applied there, and a twin rebuilt', async () => {
    const d = city.devices[0]
    if (!d) throw new Error('no device')
    const device = async () => (await (await call(`/api/devices/${d.id}`, { token: VIEWER })).json()) as { status: string; connected: boolean }
    expect(await device()).toMatchObject({ status: 'unknown', connected: false })
    live.twin.apply([{ kind: 'connectivity', deviceId: d.id, ts: Date.now(), state: 'connected' }])
    expect(await device()).toMatchObject({ status: 'online', connected: true })
    // Not in the store: the rebuilt twin does not have it, and the thread answers from that one at once.
    expect((await call('/api/admin/twin/rebuild', { method: 'POST', token: ADMIN })).status).toBe(200)
    expect(await device()).toMatchObject({ status: 'unknown', connected: false })
  })

  it('believes no client that says who it is or where it comes from', async () => {
    const spoof = { [CALLER_HEADER]: 'admin ops-admin', [PEER_HEADER]: '10.9.9.9' }
    expect((await call('/api/admin/twin/rebuild', { method: 'POST', headers: spoof })).status).toBe(401)
    expect((await call('/api/city', { headers: spoof })).status).toBe(401)
    expect((await call('/api/admin/twin/rebuild', { method: 'POST', token: VIEWER, headers: spoof })).status).toBe(403)
    await api.flushAudit()
    const audit = (await (await call('/api/audit', { token: ADMIN })).json()) as { items: { actor: string; address: string; status: number }[] }
    const refused = audit.items.find((e) => e.actor === 'wall' && e.status === 403)
    expect(refused).toMatchObject({ address: '127.0.0.1' })
  })

  it('counts what it answered in the metrics, and refuses unknown tokens for the whole port', async () => {
    expect((await call('/api/city', { token: 'not-a-token-0123456789' })).status).toBe(401)
    expect((await call('/api/health', { token: 'not-a-token-0123456789' })).status).toBe(401)
    const metrics = await (await call('/metrics', { token: VIEWER })).text()
    expect(metrics).toMatch(/citytwin_api_requests_total\{[^}]*route="GET \/api\/city"[^}]*status="200"[^}]*\} [1-9]/)
    expect(metrics).toMatch(/citytwin_api_auth_failures_total\{outcome="unknown_token"[^}]*\} [2-9]/)
  })

  it('times each answer it gives on its own routes, a refusal included, and not what it passes on', async () => {
    const count = (metrics: string, route: string): number => Number(new RegExp(`citytwin_api_answer_seconds_count\\{[^}]*route="${route}"[^}]*\\} (\\d+)`).exec(metrics)?.[1] ?? 0)
    const before = await (await call('/metrics', { token: VIEWER })).text()
    for (let i = 0; i < 3; i++) expect((await call('/api/city', { token: VIEWER })).status).toBe(200)
    expect((await call('/api/city', { token: 'not-a-token-0123456789' })).status).toBe(401)
    expect((await call('/api/health', { token: VIEWER })).status).toBe(200)
    const after = await (await call('/metrics', { token: VIEWER })).text()
    // The refusal above is answered as the route's 401: timed too, since it is the thread's own answer.
    expect(count(after, 'GET /api/city') - count(before, 'GET /api/city')).toBe(4)
    expect(after).toMatch(/citytwin_api_answer_seconds_bucket\{le="0\.001",[^}]*route="GET \/api\/city"[^}]*\} \d+/)
    // /api/health is the main thread's: passed on, not timed here.
    expect(after).not.toMatch(/citytwin_api_answer_seconds_count\{[^}]*route="GET \/api\/health"/)
  })

  it('fails to start on a port already taken, with the port\'s error, and starts on a free one', async () => {
    const holder = createServer()
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
    const port = (holder.address() as { port: number }).port
    const clash = new ApiServer({ config: config({ port }), client: store.client, twin: live })
    await expect(clash.start()).rejects.toMatchObject({ code: 'EADDRINUSE' })
    await new Promise<void>((resolve) => holder.close(() => resolve()))
    const again = new ApiServer({ config: config({ port }), client: store.client, twin: live })
    await again.start()
    try {
      expect(again.url).toBe(`http://127.0.0.1:${port}`)
      expect((await fetch(`${again.url}/api/city`, { headers: { authorization: `Bearer ${VIEWER}` } })).status).toBe(200)
    } finally {
      await again.stop(Date.now() + 2_000)
    }
  })

  it('carries the live feed to the main thread, and ends it when the API stops', async () => {
    const own = new ApiServer({ config: config({ openReads: true, liveTickMs: 50 }), client: store.client, twin: live })
    await own.start()
    const ws = new WebSocket(`${own.url.replace('http', 'ws')}/api/live`)
    const hello = await new Promise<{ type: string }>((resolve, reject) => {
      ws.once('message', (m: Buffer) => resolve(JSON.parse(m.toString()) as { type: string }))
      ws.once('error', reject)
    })
    expect(hello.type).toBe('hello')
    const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)))
    // No deadline to wait out: the stop ends the live connection it carries.
    await own.stop(Date.now() + 60_000)
    expect(await closed).toBeGreaterThan(0)
  })

  it('passes on a request\'s headers less the hop-by-hop ones and any trusted header a client sent', () => {
    const h = passedHeaders({ host: 'api', connection: 'keep-alive', 'keep-alive': 'timeout=5', upgrade: 'websocket', [CALLER_HEADER]: 'admin x', [PEER_HEADER]: '10.0.0.1', accept: 'application/json' }, { name: 'a b', role: 'viewer' }, '127.0.0.1')
    expect(h).toEqual({ host: 'api', accept: 'application/json', [PEER_HEADER]: '127.0.0.1', [CALLER_HEADER]: 'viewer a%20b' })
    expect(passedHeaders({ connection: 'Upgrade', upgrade: 'websocket' }, undefined, '::1', true)).toEqual({ connection: 'Upgrade', upgrade: 'websocket', [PEER_HEADER]: '::1' })
  })
})
