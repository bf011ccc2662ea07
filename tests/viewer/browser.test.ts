// The viewer in a real browser (Debian's Chromium, driven by playwright-core)
// against a running system on a small city: the map renders with grid
// colours, a clicked grid shows the API's counts, a ticket raised by an
// injected incident appears live, an operator signs it in the page and the
// API shows it signed, and the language toggle works. Screenshots are kept
// in tests/artifacts/.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { PNG } from 'pngjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../lib/config.ts'
import { rulesConfig } from '../../rules/config.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { DEVICE_TYPES } from '../../registry/device-types.ts'
import { buildViewer, CHROMIUM, CHROMIUM_FLAGS, REPO } from './browser-setup.ts'
import { tempDir } from '../helpers.ts'
import { openSystem, startApi, startRules, type TestSystem } from '../system.ts'
import type { RulesService } from '../../rules/service.ts'
import type { ApiServer } from '../../twin/api/server.ts'

const OPERATOR = 'operator-token-browser-0001'
const ADMIN = 'admin-token-browser-0001'
const ARTIFACTS = join(REPO, 'tests', 'artifacts')
const city = generateCity({ seed: 3, scale: 0.01 })
let sys: TestSystem
let rules: RulesService
let api: ApiServer
let browser: Browser
let page: Page
const pageErrors: string[] = []
let dist: string

type PageMap = { level?: string; replaying: boolean; drawnState: (id: number) => { health: number; tickets: number[] } | undefined; flyTo: (lon: number, lat: number, zoom: number) => void; busy: boolean }

async function shot(name: string): Promise<Buffer> {
  mkdirSync(ARTIFACTS, { recursive: true })
  const png = await page.screenshot({ fullPage: false })
  writeFileSync(join(ARTIFACTS, `viewer-${name}.png`), png)
  return png
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need Chromium at ${CHROMIUM}: apt-get install chromium (the CI script installs it)`)
  dist = await buildViewer(join(tempDir(), 'viewer-dist'))
  // degradedAfterMs on: the banner test has a gateway shed devices (the lag is off, so old test readings are no lag).
  sys = await openSystem(city, { sweepIntervalMs: 1_000, degradedAfterMs: 10_000 })
  rules = await startRules(sys, loadConfig(rulesConfig, { env: {}, overrides: { tickMs: 200 } }))
  api = await startApi(sys, rules, { liveTickMs: 100, tokens: [{ name: 'op-zhang', role: 'operator', token: OPERATOR }, { name: 'admin-li', role: 'admin', token: ADMIN }] }, dist)
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS })
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  page.on('pageerror', (e) => {
    console.error('page error:', e.message)
    pageErrors.push(e.message)
  })
  // The tsx loader names inner functions with a helper the page lacks.
  await page.addInitScript('globalThis.__name = (f) => f')
  await page.goto(api.url)
  await page.waitForFunction(() => (globalThis as unknown as { citytwin?: { ready: boolean } }).citytwin?.ready === true, undefined, { timeout: 60_000 })
})

afterAll(async () => {
  await browser?.close()
  await api?.stop(Date.now() + 2_000)
  await rules?.stop()
  await sys?.close()
})

/** Pixels of the screenshot's map area whose colour is near one of the grid colours. */
function gridPixels(png: Buffer): number {
  const img = PNG.sync.read(png)
  let n = 0
  // The map is the left part under the header (48 px); the side panel is 360 px wide.
  for (let y = 60; y < img.height - 10; y += 4) {
    for (let x = 10; x < img.width - 370; x += 4) {
      const i = 4 * (y * img.width + x)
      const r = img.data[i] ?? 0
      const g = img.data[i + 1] ?? 0
      const b = img.data[i + 2] ?? 0
      // Grey "no devices" or a red-amber-green health colour over the light background.
      const grey = Math.abs(r - g) < 12 && Math.abs(g - b) < 12 && r > 150 && r < 215
      const health = g > r + 20 || r > b + 60
      if (grey || health) n++
    }
  }
  return n
}

/**
 * Clicks the map where `lonLat` is drawn and waits for `shows` in the page. deck.gl takes a
 * click only when the button is up again within 250 ms (its tap recognizer); under a loaded
 * CI machine the browser can see Playwright's two mouse events further apart than that, so a
 * click that is not taken is made again, a few times. Each miss says what deck.gl picks at
 * that point and what the panel shows, so a real failure is plain.
 */
async function clickOnMap(lonLat: readonly [number, number], shows: string): Promise<void> {
  type PickDeck = { getViewports: () => { project: (p: number[]) => number[] }[]; pickObject: (o: { x: number; y: number }) => { layer?: { id: string } | null } | null }
  const misses: string[] = []
  for (let attempt = 0; attempt < 4; attempt++) {
    const at = await page.evaluate(([lon, lat]) => {
      const deck = (globalThis as unknown as { citytwin: { map: { deck: PickDeck } } }).citytwin.map.deck
      const [x = 0, y = 0] = deck.getViewports()[0]?.project([lon, lat]) ?? []
      return { x, y, picked: deck.pickObject({ x, y })?.layer?.id ?? 'nothing' }
    }, [lonLat[0], lonLat[1]] as [number, number])
    const box = await page.locator('#map canvas').boundingBox()
    const before = await page.textContent('#panel')
    await page.mouse.click((box?.x ?? 0) + at.x, (box?.y ?? 0) + at.y)
    try {
      await page.waitForSelector(shows, { timeout: 10_000 })
      return
    } catch {
      // A click that was taken may still be loading its panel: it gets the rest of Playwright's usual 30 s.
      if ((await page.textContent('#panel')) !== before && (await page.waitForSelector(shows, { timeout: 20_000 }).then(() => true, () => false))) return
      const now = await page.textContent('#panel')
      misses.push(`click ${attempt + 1} at (${Math.round(at.x)}, ${Math.round(at.y)}) over ${at.picked}: the panel shows ${JSON.stringify(now?.slice(0, 200) ?? '')}`)
      // A click that was taken and showed something else is the failure itself: no second try.
      if (now !== before) break
    }
  }
  throw new Error(`${shows} never showed:\n${misses.join('\n')}`)
}

describe('the viewer in Chromium', () => {
  it('renders the city map with grid colours', async () => {
    await page.locator('#legend .title').first().waitFor()
    await page.waitForTimeout(1_500)
    const png = await shot('city')
    expect(gridPixels(png)).toBeGreaterThan(500)
    expect(await page.textContent('header h1')).toBe('城市数字孪生 · 未诉先办')
  })

  it('draws without multisampling in software GL, and never keeps the drawing buffer', async () => {
    const gl = await page.evaluate(() => {
      // DOM types are not in the tests' type library: the few used here, by shape.
      type GL = { getExtension: (n: string) => { UNMASKED_RENDERER_WEBGL: number } | null; getParameter: (p: number) => unknown; getContextAttributes: () => { antialias: boolean; preserveDrawingBuffer: boolean } }
      const doc = (globalThis as unknown as { document: { querySelector: (s: string) => { getContext: (k: string) => GL | null } | null } }).document
      const ctx = doc.querySelector('#map canvas')?.getContext('webgl2')
      const info = ctx?.getExtension('WEBGL_debug_renderer_info')
      return { renderer: String(ctx && info ? ctx.getParameter(info.UNMASKED_RENDERER_WEBGL) : ''), attributes: ctx?.getContextAttributes() }
    })
    // The test browser runs with --disable-gpu: SwiftShader.
    expect(gl.renderer).toMatch(/SwiftShader/)
    expect(gl.attributes?.antialias).toBe(false)
    expect(gl.attributes?.preserveDrawingBuffer).toBe(false)
  })

  it('a clicked district shows the same counts as the API', async () => {
    const district = city.grids.find((g) => g.level === 'district')
    if (!district) throw new Error('no district')
    await clickOnMap(district.centroid, '#grid-counts')
    const id = Number(await page.getAttribute('#grid-counts', 'data-grid'))
    const fromApi = (await (await fetch(`${api.url}/api/grids/${id}?limit=1`)).json()) as { grid: { devices: Record<string, number>; tickets: Record<string, number> } }
    for (const k of ['online', 'silent', 'offline', 'unknown', 'total'] as const) {
      expect(Number(await page.textContent(`#grid-counts dd[data-key="devices.${k}"]`)), k).toBe(fromApi.grid.devices[k])
    }
    expect(Number(await page.textContent('#grid-counts dd[data-key="tickets.critical"]'))).toBe(fromApi.grid.tickets.critical)
    await shot('grid-panel')
  })

  it('a ticket raised by an injected incident appears live, and an operator signs it in the page', async () => {
    const d = city.devices.find((x) => x.type === 'elevator')
    if (!d) throw new Error('no elevator')
    await sys.report(d.id, Date.now(), { trapped: 1 })
    const item = page.locator('#ticket-list li', { hasText: '电梯困人' })
    await item.waitFor({ timeout: 30_000 })
    const id = await item.getAttribute('data-id')
    expect(id).toMatch(/^T-\d{8}-\d{6}$/)
    await shot('ticket-live')
    await page.fill('#token', OPERATOR)
    await page.press('#token', 'Tab')
    await item.locator('button[data-action="sign"]').click()
    await page.waitForSelector(`#ticket-list li[data-id="${id ?? ''}"][data-status="signed"]`, { timeout: 30_000 })
    const fromApi = (await (await fetch(`${api.url}/api/tickets/${id ?? ''}`)).json()) as { ticket: { status: string }; history: { action: string; actor: string }[] }
    expect(fromApi.ticket.status).toBe('signed')
    expect(fromApi.history.find((h) => h.action === 'sign')?.actor).toBe('op-zhang')
    await shot('ticket-signed')
  })

  it('shows the ingest-degraded banner while a gateway sheds devices, and takes it down once it stops', async () => {
    let shedding = true
    sys.live.watchIngest({ backlogMs: () => 0, shedding: () => shedding })
    try {
      await page.waitForSelector('#ingest-banner', { timeout: 15_000 })
      expect(await page.textContent('#ingest-banner')).toMatch(/数据接入降级|Ingest degraded/)
      await shot('ingest-degraded')
      expect((await (await fetch(`${api.url}/api/ingest`)).json()) as { degraded: boolean }).toMatchObject({ degraded: true, shedding: true })
    } finally {
      shedding = false
    }
    await page.waitForSelector('#ingest-banner', { state: 'detached', timeout: 15_000 })
    sys.live.watchIngest(undefined)
  })

  it('switches the language to English and back', async () => {
    await page.click('#lang')
    expect(await page.textContent('header h1')).toBe('City twin · handle it before the complaint')
    expect(await page.getAttribute('html', 'lang')).toBe('en')
    await shot('english')
    await page.click('#lang')
    expect(await page.textContent('header h1')).toBe('城市数字孪生 · 未诉先办')
  })

  it('replays a past hour of the grids from the store with the time slider, and goes back to live', async () => {
    const HOUR = 3_600_000
    const h0 = Math.floor(Date.now() / HOUR) * HOUR
    // Two hours ago every device reported at its interval: the hourly roll-up says so (the
    // readings behind it are ClickHouse's materialised view, tested with the API).
    const byKey = new Map<string, { community: number; street: number; district: number; type: string; n: number }>()
    for (const d of city.devices) {
      const k = `${d.communityId}|${d.type}`
      const e = byKey.get(k) ?? { community: d.communityId, street: d.streetId, district: d.districtId, type: d.type, n: 0 }
      e.n += 3600 / d.intervalS
      byKey.set(k, e)
    }
    const first = new Map(DEVICE_TYPES.map((t) => [t.type, t.metrics[0]?.name ?? '']))
    await sys.store.client.insert({ table: 'readings_1h', format: 'JSONEachRow', values: [...byKey.values()].map((e) => ({
      hour: (h0 - 2 * HOUR) / 1000, community_id: e.community, metric: first.get(e.type as never) ?? '', device_type: e.type, street_id: e.street, district_id: e.district, n: e.n, total: 0, lo: 0, hi: 0,
    })) })
    const district = city.grids.find((g) => g.level === 'district')
    if (!district) throw new Error('no district')
    await page.evaluate(([lon, lat]) => (globalThis as unknown as { citytwin: { map: PageMap } }).citytwin.map.flyTo(lon ?? 0, lat ?? 0, 9), district.centroid)
    await page.waitForFunction(() => (globalThis as unknown as { citytwin: { map: PageMap } }).citytwin.map.level === 'district')
    expect(await page.textContent('#time-label')).toBe('实时')
    const frames = (await (await fetch(`${api.url}/api/map/replay?level=district`)).json()) as { times: number[] }
    const at = frames.times.indexOf(h0 - 2 * HOUR)
    expect(at).toBeGreaterThan(0)
    // Two hours ago: every district fully reporting and nothing open.
    await page.locator('#time-slider').fill(String(at))
    await page.waitForFunction(() => (globalThis as unknown as { citytwin: { map: PageMap } }).citytwin.map.replaying)
    expect(await page.textContent('#time-label')).toMatch(/^回放 /)
    expect(await page.evaluate((id) => (globalThis as unknown as { citytwin: { map: PageMap } }).citytwin.map.drawnState(id), district.id)).toEqual({ health: 100, tickets: [0, 0, 0] })
    await shot('replay')
    // The hour before: nothing stored yet, so no data.
    await page.locator('#time-slider').fill(String(at - 1))
    await page.waitForFunction((id) => Number.isNaN((globalThis as unknown as { citytwin: { map: PageMap } }).citytwin.map.drawnState(id)?.health), district.id)
    // The right end is live again: the live state, with the elevator ticket raised above.
    await page.locator('#time-slider').fill(String(frames.times.length))
    await page.waitForFunction(() => !(globalThis as unknown as { citytwin: { map: PageMap } }).citytwin.map.replaying)
    expect(await page.textContent('#time-label')).toBe('实时')
    const live = (await (await fetch(`${api.url}/api/grids/${district.id}?limit=1`)).json()) as { grid: { health: number } }
    expect((await page.evaluate((id) => (globalThis as unknown as { citytwin: { map: PageMap } }).citytwin.map.drawnState(id), district.id))?.health).toBe(live.grid.health)
  })

  it('draws the special grids, the incident heatmap and the ticket icons, and filters tickets by severity', async () => {
    await page.click('#toggle-special')
    await page.click('#toggle-heatmap')
    await page.waitForFunction(() => {
      const deck = (globalThis as unknown as { citytwin: { map: { deck: { props: { layers: { id: string }[] } } } } }).citytwin.map.deck
      const ids = deck.props.layers.map((l) => l.id)
      return ids.includes('special') && ids.includes('incidents') && ids.includes('tickets')
    })
    await page.waitForTimeout(1_000)
    await shot('layers')
    expect(await page.getAttribute('#toggle-special', 'aria-pressed')).toBe('true')
    // The elevator ticket is critical: filtering on info leaves the list empty, on critical keeps it.
    await page.selectOption('#filter-severity', 'info')
    await page.locator('#ticket-list li').first().waitFor({ state: 'detached' })
    await page.selectOption('#filter-severity', 'critical')
    await page.locator('#ticket-list li').first().waitFor()
    await page.selectOption('#filter-severity', '')
    await page.click('#toggle-special')
    await page.click('#toggle-heatmap')
    expect(pageErrors).toEqual([])
  })

  it('shows devices and cameras up close, and a clicked camera\'s state', async () => {
    const cam = city.cameras[0]
    if (!cam) throw new Error('no camera')
    await page.evaluate(([lon, lat]) => (globalThis as unknown as { citytwin: { map: PageMap } }).citytwin.map.flyTo(lon ?? 0, lat ?? 0, 17), [cam.lon, cam.lat])
    await page.waitForFunction(() => {
      const deck = (globalThis as unknown as { citytwin: { map: { deck: { props: { layers: { id: string }[] } } } } }).citytwin.map.deck
      return deck.props.layers.some((l) => l.id === 'cameras')
    }, undefined, { timeout: 30_000 })
    await page.waitForTimeout(500)
    await clickOnMap([cam.lon, cam.lat], '#camera-state')
    // Close up, the micro-grid the camera stands in fills the view although its centroid may be off screen: it is drawn.
    expect(await page.evaluate((id) => (globalThis as unknown as { citytwin: { map: PageMap } }).citytwin.map.drawnState(id) !== undefined, cam.microGridId)).toBe(true)
    expect(await page.textContent('#panel h2')).toContain(cam.id)
    expect(await page.textContent('#camera-snapshot')).toContain('视频接入网关')
    await shot('camera')
  })

  it('gives an admin the operating-mode switch, which switches the city', async () => {
    expect(await page.locator('#mode-switch').count()).toBe(0) // the operator's token is not an admin's
    await page.fill('#token', ADMIN)
    await page.press('#token', 'Tab')
    await page.waitForSelector('#mode-switch')
    page.once('dialog', (d) => void d.accept())
    await page.selectOption('#mode-select', 'emergency')
    await page.click('#mode-switch')
    await page.waitForSelector('#mode.mode-emergency', { timeout: 30_000 })
    const modes = (await (await fetch(`${api.url}/api/modes`)).json()) as { city: string }
    expect(modes.city).toBe('emergency')
    await shot('mode-emergency')
  })

  it('draws a configured MapLibre base map under the grids, and none when none is configured', async () => {
    expect(await page.locator('#basemap').count()).toBe(0)
    // A deployment's tile server, standing in: one style with a background layer.
    const styles = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' })
      res.end(JSON.stringify({ version: 8, sources: {}, layers: [{ id: 'land', type: 'background', paint: { 'background-color': '#123456' } }] }))
    })
    await new Promise<void>((r) => styles.listen(0, '127.0.0.1', r))
    const styleUrl = `http://127.0.0.1:${(styles.address() as AddressInfo).port}/style.json`
    const withBase = await startApi(sys, rules, { liveTickMs: 100, basemapStyleUrl: styleUrl }, dist)
    const p2 = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    try {
      await p2.addInitScript('globalThis.__name = (f) => f')
      await p2.goto(withBase.url)
      await p2.waitForFunction(() => (globalThis as unknown as { citytwin?: { ready: boolean } }).citytwin?.ready === true, undefined, { timeout: 60_000 })
      await p2.waitForSelector('#basemap canvas', { timeout: 30_000 })
      await p2.waitForTimeout(2_000)
      const png = PNG.sync.read(await p2.screenshot())
      writeFileSync(join(ARTIFACTS, 'viewer-basemap.png'), PNG.sync.write(png))
      let land = 0
      for (let y = 60; y < png.height; y += 4) {
        for (let x = 0; x < png.width - 370; x += 4) {
          const i = 4 * (y * png.width + x)
          if (Math.abs((png.data[i] ?? 0) - 0x12) < 8 && Math.abs((png.data[i + 1] ?? 0) - 0x34) < 8 && Math.abs((png.data[i + 2] ?? 0) - 0x56) < 8) land++
        }
      }
      expect(land).toBeGreaterThan(100)
    } finally {
      await p2.close()
      await withBase.stop(Date.now() + 2_000)
      await new Promise((r) => styles.close(r))
    }
  })
})
