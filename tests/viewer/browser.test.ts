// The viewer in a real browser (Debian's Chromium, driven by playwright-core)
// against a running system on a small city: the map renders with grid
// colours, a clicked grid shows the API's counts, a ticket raised by an
// injected incident appears live, an operator signs it in the page and the
// API shows it signed, and the language toggle works. Screenshots are kept
// in tests/artifacts/.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { PNG } from 'pngjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../lib/config.ts'
import { rulesConfig } from '../../rules/config.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { buildViewer, CHROMIUM, CHROMIUM_FLAGS, REPO } from './browser-setup.ts'
import { tempDir } from '../helpers.ts'
import { openSystem, startApi, startRules, type TestSystem } from '../system.ts'
import type { RulesService } from '../../rules/service.ts'
import type { ApiServer } from '../../twin/api/server.ts'

const OPERATOR = 'operator-token-browser-0001'
const ARTIFACTS = join(REPO, 'tests', 'artifacts')
const city = generateCity({ seed: 3, scale: 0.01 })
let sys: TestSystem
let rules: RulesService
let api: ApiServer
let browser: Browser
let page: Page

async function shot(name: string): Promise<Buffer> {
  mkdirSync(ARTIFACTS, { recursive: true })
  const png = await page.screenshot({ fullPage: false })
  writeFileSync(join(ARTIFACTS, `viewer-${name}.png`), png)
  return png
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need Chromium at ${CHROMIUM}: apt-get install chromium (the CI script installs it)`)
  const dist = await buildViewer(join(tempDir(), 'viewer-dist'))
  sys = await openSystem(city, { sweepIntervalMs: 1_000 })
  rules = await startRules(sys, loadConfig(rulesConfig, { env: {}, overrides: { tickMs: 200 } }))
  api = await startApi(sys, rules, { liveTickMs: 100, tokens: [{ name: 'op-zhang', role: 'operator', token: OPERATOR }] }, dist)
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS })
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  page.on('pageerror', (e) => console.error('page error:', e.message))
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

describe('the viewer in Chromium', () => {
  it('renders the city map with grid colours', async () => {
    await page.locator('#legend .title').first().waitFor()
    await page.waitForTimeout(1_500)
    const png = await shot('city')
    expect(gridPixels(png)).toBeGreaterThan(500)
    expect(await page.textContent('header h1')).toBe('城市数字孪生 · 未诉先办')
  })

  it('a clicked district shows the same counts as the API', async () => {
    const district = city.grids.find((g) => g.level === 'district')
    if (!district) throw new Error('no district')
    const [x, y] = await page.evaluate(([lon, lat]) => {
      const w = globalThis as unknown as { citytwin: { map: { deck: { getViewports: () => { project: (p: number[]) => number[] }[] } } } }
      const vp = w.citytwin.map.deck.getViewports()[0]
      return vp ? vp.project([lon, lat]) : [0, 0]
    }, district.centroid)
    const box = await page.locator('#map canvas').boundingBox()
    await page.mouse.click((box?.x ?? 0) + (x ?? 0), (box?.y ?? 0) + (y ?? 0))
    await page.waitForSelector('#grid-counts')
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

  it('switches the language to English and back', async () => {
    await page.click('#lang')
    expect(await page.textContent('header h1')).toBe('City twin · handle it before the complaint')
    expect(await page.getAttribute('html', 'lang')).toBe('en')
    await shot('english')
    await page.click('#lang')
    expect(await page.textContent('header h1')).toBe('城市数字孪生 · 未诉先办')
  })
})
