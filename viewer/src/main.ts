// The twin viewer: the grid map, the side panel of what was clicked, the
// live ticket list with the operator's actions, the operating mode (with a
// switch for admins), layers and filters, the time slider, and the language
// toggle. Everything comes from the API of the same origin.
import './style.css'
import { ApiError, getBuffer, getJson, postJson, setToken, token, type GridView, type TicketView } from './api.ts'
import { startBasemap } from './basemap.ts'
import { frameLabel, type ReplayFrames } from './data/replay.ts'
import { currentLang, onLang, setLang, t, type Lang } from './i18n.ts'
import { LiveClient } from './live.ts'
import { GridMap, type Incidents, type MapFilters, type Picked } from './map.ts'
import { clear, el, sparkline } from './ui/dom.ts'

const app = document.getElementById('app') as HTMLDivElement
const header = el('header')
const mapBox = el('div', { id: 'map' })
const side = el('aside', { id: 'side' })
const panel = el('section', { id: 'panel' })
const ticketsBox = el('section', { id: 'tickets' })
// Made once: the ticket list is redrawn every few seconds, and an operator may be typing here.
const tokenInput = el('input', { id: 'token', type: 'password', value: token() })
tokenInput.addEventListener('change', () => {
  setToken(tokenInput.value.trim())
  void loadRole()
})
const tokenLabel = el('label', {})
const ticketsTitle = el('h2', {})
const ticketsBody = el('div', {})
ticketsBox.append(ticketsTitle, tokenLabel, ticketsBody)
const legend = el('div', { id: 'legend' })
const tooltip = el('div', { id: 'tooltip' })
const controls = el('div', { id: 'controls' })
const timebar = el('div', { id: 'timebar' })
side.append(panel, ticketsBox)
app.append(header, mapBox, side, legend, tooltip, controls, timebar)

const live = new LiveClient()
const map = new GridMap(mapBox, live)
let selected: Picked | undefined
let tickets: TicketView[] = []
let liveState = false
let colourBy: 'health' | 'tickets' = 'health'
let modeInForce = 'normal'
/** The "ingest degraded" alarm (GET /api/ingest): while it is up, no device is judged silent. */
let ingest: { degraded: boolean; since: number | null; lagMs: number; shedding: boolean } = { degraded: false, since: null, lagMs: 0, shedding: false }
/** The token's role, from GET /api/me: admins get the mode switch. */
let role = 'viewer'
let filters: MapFilters = {}
let deviceTypes: string[] = []
let showSpecial = false
let showHeat = false
const MODES = ['normal', 'holiday', 'major_event', 'emergency'] as const
const DEVICE_STATES = ['unknown', 'online', 'silent', 'offline'] as const

// The language: zh by default, remembered per browser.
setLang((localStorage.getItem('citytwin.lang') as Lang | null) ?? 'zh')
document.documentElement.lang = currentLang() === 'zh' ? 'zh-CN' : 'en'
onLang(() => {
  localStorage.setItem('citytwin.lang', currentLang())
  document.documentElement.lang = currentLang() === 'zh' ? 'zh-CN' : 'en'
  renderAll()
})

function renderHeader(): void {
  clear(header)
  const search = el('input', { id: 'search', type: 'search', placeholder: t('search') })
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') void find(search.value.trim())
  })
  const by = el('button', { id: 'colour-by', type: 'button' }, `${t('colourBy')}: ${t(colourBy)}`)
  by.addEventListener('click', () => {
    colourBy = colourBy === 'health' ? 'tickets' : 'health'
    map.colourBy = colourBy
    renderAll()
  })
  const lang = el('button', { id: 'lang', type: 'button' }, t('lang'))
  lang.addEventListener('click', () => setLang(currentLang() === 'zh' ? 'en' : 'zh'))
  const mode = el('span', { id: 'mode', class: `mode mode-${modeInForce}` }, `${t('mode')}: ${t(modeInForce)}`)
  const dot = el('span', { id: 'live-state', class: liveState ? 'on' : 'off' }, `${t('live')}: ${t(liveState ? 'connected' : 'disconnected')}`)
  header.append(el('h1', {}, t('title')), search, by, mode)
  if (role === 'admin') {
    // City-wide; a district's own mode is set through the API or `citytwin mode set`.
    const pick = el('select', { id: 'mode-select', 'aria-label': t('switchMode') }, ...MODES.map((m) => el('option', { value: m, ...(m === modeInForce ? { selected: '' } : {}) }, t(m))))
    const go = el('button', { id: 'mode-switch', type: 'button' }, t('switchMode'))
    go.addEventListener('click', () => void switchMode(pick.value))
    header.append(pick, go)
  }
  header.append(dot, lang)
  if (ingest.degraded) {
    const since = ingest.since === null ? '' : ` · ${new Date(ingest.since).toLocaleTimeString(currentLang() === 'zh' ? 'zh-CN' : 'en-GB')}`
    const why = [ingest.lagMs >= 1_000 ? `${t('ingestLate')} ${Math.round(ingest.lagMs / 1000)} s` : '', ingest.shedding ? t('ingestShedding') : ''].filter(Boolean).join(', ')
    header.append(el('div', { id: 'ingest-banner', class: 'banner', role: 'alert' }, `${t('ingestDegraded')}${since}${why ? `: ${why}` : ''} — ${t('ingestHold')}`))
  }
}

async function loadIngest(): Promise<void> {
  try {
    const next = await getJson<typeof ingest>('/api/ingest')
    const changed = next.degraded !== ingest.degraded || (next.degraded && Math.round(next.lagMs / 1000) !== Math.round(ingest.lagMs / 1000))
    ingest = next
    if (changed) renderHeader()
  } catch (e) {
    console.warn('ingest', e)
  }
}

async function switchMode(mode: string): Promise<void> {
  if (mode === modeInForce) return
  if (!window.confirm(`${t('switchMode')}: ${t(modeInForce)} → ${t(mode)}?`)) return
  try {
    await postJson('/api/modes', { mode, note: 'switched in the viewer' })
    flash(`${t('mode')}: ${t(mode)}`)
  } catch (e) {
    flash(`${t('mode')}: ${t('failed')}: ${e instanceof ApiError ? `${e.status} ${e.message}` : String(e)}`, true)
  }
  await loadMode()
}

/** Layers and filters, over the map's top-left corner. */
function renderControls(): void {
  clear(controls)
  const toggle = (id: string, label: string, on: boolean, flip: () => void): HTMLElement => {
    const b = el('button', { id, type: 'button', class: on ? 'on' : '', 'aria-pressed': String(on) }, label)
    b.addEventListener('click', flip)
    return b
  }
  const select = (id: string, label: string, options: readonly [string, string][], value: string | undefined, set: (v: string | undefined) => void): HTMLElement => {
    const sel = el('select', { id, 'aria-label': label }, el('option', { value: '' }, `${label}: ${t('all')}`),
      ...options.map(([v, text]) => el('option', { value: v, ...(v === value ? { selected: '' } : {}) }, text)))
    sel.addEventListener('change', () => set(sel.value === '' ? undefined : sel.value))
    return sel
  }
  controls.append(
    toggle('toggle-special', t('special'), showSpecial, () => {
      showSpecial = !showSpecial
      void map.showSpecial(showSpecial)
      renderControls()
    }),
    toggle('toggle-heatmap', t('heatmap'), showHeat, () => {
      showHeat = !showHeat
      void loadIncidents()
      renderControls()
    }),
    select('filter-type', t('type'), deviceTypes.map((d) => [d, d]), filters.deviceType, (v) => setFilters({ ...filters, deviceType: v })),
    select('filter-state', t('status'), DEVICE_STATES.map((d, i) => [String(i), t(d)]), filters.deviceStatus === undefined ? undefined : String(filters.deviceStatus),
      (v) => setFilters({ ...filters, deviceStatus: v === undefined ? undefined : Number(v) })),
    select('filter-severity', t('severity'), (['critical', 'warning', 'info'] as const).map((s) => [s, t(s)]), filters.severity, (v) => setFilters({ ...filters, severity: v })),
  )
}

function setFilters(f: MapFilters): void {
  filters = f
  map.filters = f
  renderTickets()
  if (showHeat) void loadIncidents()
}

async function loadIncidents(): Promise<void> {
  if (!showHeat) {
    if (map.hasIncidents) map.setIncidents(undefined)
    return
  }
  try {
    const q = filters.severity ? `?severity=${filters.severity}` : ''
    map.setIncidents(await getJson<Incidents>(`/api/map/incidents${q}`))
  } catch (e) {
    flash(`${t('heatmap')}: ${t('failed')}: ${String(e)}`, true)
  }
}

// The time slider: the last 24 hours of the drawn level, hour by hour, from
// the store (GET /api/map/replay); the right end is live.
let replay: ReplayFrames | undefined
let frame = -1 // -1: live
let playing: ReturnType<typeof setInterval> | undefined
/** Frames by level and box, each fetched once (a drag of the slider asks many times) and again after a few minutes, as the newest hour fills. */
const frameCache = new Map<string, { at: number; frames: Promise<ReplayFrames> }>()
let seekSeq = 0
const slider = el('input', { id: 'time-slider', type: 'range', min: '0', max: '24', value: '24', step: '1', 'aria-label': t('timeSlider') })
const timeLabel = el('span', { id: 'time-label' })
const playButton = el('button', { id: 'time-play', type: 'button' })
slider.addEventListener('input', () => void seek(Number(slider.value)))
playButton.addEventListener('click', () => {
  if (playing) return stopPlaying()
  playing = setInterval(() => {
    const next = frame < 0 ? 0 : frame + 1
    if (!replay || next >= replay.times.length) return stopPlaying()
    void seek(next)
  }, 800)
  renderTimebar()
})
timebar.append(playButton, slider, timeLabel)

function stopPlaying(): void {
  clearInterval(playing)
  playing = undefined
  renderTimebar()
}

/** The frames of the drawn level; none at micro-grids, where the roll-ups stop. */
function framesFor(level: string, box: readonly number[] | undefined): Promise<ReplayFrames> | undefined {
  if (level === 'micro') return undefined
  const key = `${level}|${box?.join(',') ?? ''}`
  const hit = frameCache.get(key)
  if (hit && Date.now() - hit.at < 300_000) return hit.frames
  const q = box ? `&bbox=${box.map((x) => x.toFixed(5)).join(',')}` : ''
  const frames = getJson<ReplayFrames>(`/api/map/replay?level=${level}${q}`)
  frames.catch(() => frameCache.delete(key))
  frameCache.set(key, { at: Date.now(), frames })
  return frames
}

async function seek(f: number): Promise<void> {
  // Only the latest request shows: an older answer arriving late must not replace it.
  const seq = ++seekSeq
  const level = map.level
  const frames = level ? await framesFor(level, map.levelBox)?.catch((e: unknown) => {
    flash(`${t('timeSlider')}: ${t('failed')}: ${String(e)}`, true)
    return undefined
  }) : undefined
  if (seq !== seekSeq) return
  replay = frames
  if (frames) slider.max = String(frames.times.length)
  if (!frames || f >= frames.times.length) {
    frame = -1
    slider.value = slider.max
    map.stopReplay()
  } else {
    frame = f
    slider.value = String(f)
    map.replayFrame(frames, f)
  }
  renderTimebar()
}

function renderTimebar(): void {
  playButton.textContent = playing ? '❚❚' : '▶'
  playButton.title = t(playing ? 'pause' : 'play')
  slider.setAttribute('aria-label', t('timeSlider'))
  const past = frame >= 0 && replay !== undefined
  timebar.classList.toggle('past', past)
  timeLabel.textContent = past && replay ? `${t('replay')} ${frameLabel(replay, frame, currentLang() === 'zh' ? 'zh-CN' : 'en-GB')}`
    : map.level === 'micro' ? `${t('live')} · ${t('replayCoarse')}` : t('live')
}

function renderLegend(): void {
  clear(legend)
  if (colourBy === 'health') {
    legend.append(el('div', { class: 'title' }, t('legendHealth')), el('div', { class: 'ramp' }), el('div', { class: 'ends' }, el('span', {}, '0'), el('span', {}, '100')),
      el('div', {}, el('i', { class: 'sw nodata' }), t('noData')))
  } else {
    legend.append(el('div', { class: 'title' }, t('legendTickets')),
      ...(['critical', 'warning', 'info'] as const).map((s) => el('div', {}, el('i', { class: `sw ${s}` }), t(s))))
  }
  legend.append(el('div', { class: 'title' }, t('devices')), ...(['online', 'silent', 'offline', 'unknown'] as const).map((s) => el('div', {}, el('i', { class: `dot ${s}` }), t(s))))
}

const fmtLeft = (ms: number | null): string => (ms === null ? '' : ms < 0 ? `${t('overdue')} ${Math.round(-ms / 60_000)}′` : `${Math.round(ms / 60_000)}′`)

function renderTickets(): void {
  const shown = map.shownTickets
  ticketsTitle.textContent = `${t('ticketList')} (${shown.length})`
  tokenInput.placeholder = t('tokenHint')
  if (tokenLabel.firstChild?.nodeType !== Node.TEXT_NODE || tokenLabel.firstChild.textContent !== t('token')) {
    clear(tokenLabel)
    tokenLabel.append(t('token'), tokenInput)
  }
  clear(ticketsBody)
  if (shown.length === 0) ticketsBody.append(el('p', { class: 'muted' }, t('noTickets')))
  const list = el('ol', { id: 'ticket-list' })
  for (const tk of shown) {
    const li = el('li', { class: `ticket sev-${tk.severity}`, 'data-id': tk.id, 'data-status': tk.status },
      el('div', { class: 'row' }, el('b', {}, tk.title), el('span', { class: 'sla' }, fmtLeft(tk.slaLeftMs))),
      el('div', { class: 'row muted' }, `${tk.id} · ${t(tk.status)} · ${tk.unitName}${tk.occurrences > 1 ? ` · ×${tk.occurrences}` : ''}${tk.supervised ? ' · 督办' : ''}`))
    const actions = el('div', { class: 'actions' })
    for (const a of ['sign', 'start', 'resolve', 'return', 'escalate', 'comment'] as const) {
      if (!tk.actions.includes(a)) continue
      const b = el('button', { type: 'button', 'data-action': a }, t(a))
      b.addEventListener('click', (e) => {
        e.stopPropagation()
        void act(tk, a)
      })
      actions.append(b)
    }
    li.append(actions)
    li.addEventListener('click', () => {
      map.flyTo(tk.place.lon, tk.place.lat, Math.max(map.view.zoom, 14))
      void showPicked({ kind: 'ticket', ticket: tk })
    })
    list.append(li)
  }
  ticketsBody.append(list)
}

async function act(tk: TicketView, action: string): Promise<void> {
  let note: string | undefined
  if (['return', 'escalate', 'comment'].includes(action)) {
    note = window.prompt(t('note')) ?? undefined
    if (!note) return
  }
  try {
    await postJson(`/api/tickets/${encodeURIComponent(tk.id)}/actions`, { action, ...(note ? { note } : {}) })
    flash(`${tk.id}: ${t(action)} ${t('done')}`)
  } catch (e) {
    flash(`${tk.id}: ${t('failed')}: ${e instanceof ApiError ? `${e.status} ${e.message}` : String(e)}`, true)
  }
  await loadTickets()
}

function flash(text: string, bad = false): void {
  const f = el('div', { class: `flash${bad ? ' bad' : ''}`, role: 'status' }, text)
  app.append(f)
  setTimeout(() => f.remove(), 4_000)
}

async function showPicked(p: Picked): Promise<void> {
  selected = p
  clear(panel)
  panel.append(el('p', { class: 'muted' }, t('loading')))
  try {
    if (p.kind === 'grid') {
      const g = await getJson<{ grid: GridView }>(`/api/grids/${p.id}?limit=1`)
      renderGrid(g.grid)
    } else if (p.kind === 'device') {
      const d = await getJson<{ id: string; type: string; status: string; values: Record<string, { value: number; ts: number }>; openTickets: number }>(`/api/devices/${encodeURIComponent(p.id)}`)
      clear(panel)
      panel.append(el('h2', {}, `${t('devices')} ${d.id}`), el('p', {}, `${t('type')}: ${d.type} · ${t('status')}: ${t(d.status)} · ${t('openTickets')}: ${d.openTickets}`))
      const rows = Object.entries(d.values).map(([m, v]) => el('tr', {}, el('td', {}, m), el('td', {}, String(v.value)), el('td', { class: 'muted' }, new Date(v.ts).toLocaleTimeString())))
      panel.append(el('table', {}, ...rows))
      const metric = Object.keys(d.values).find((m) => m !== 'battery_pct') ?? Object.keys(d.values)[0]
      if (metric) {
        const to = Date.now()
        const h = await getJson<{ points: { t: number; avg: number }[] }>(`/api/devices/${encodeURIComponent(d.id)}/history?metric=${metric}&from=${to - 86_400_000}&to=${to}&points=96`)
        panel.append(el('h3', {}, `${t('history')} · ${metric}`), sparkline(h.points.map((x) => ({ t: x.t, v: x.avg }))))
      }
    } else if (p.kind === 'camera') {
      const c = await getJson<{ id: string; kind: string; status: string; lastSeen: number | null }>(`/api/cameras/${encodeURIComponent(p.id)}`)
      clear(panel)
      panel.append(el('h2', {}, `${t('cameras')} ${c.id}`), el('p', { id: 'camera-state' }, `${t('type')}: ${c.kind} · ${t('status')}: ${t(c.status)}`),
        el('p', { class: 'muted' }, `${t('lastSeen')}: ${c.lastSeen ? new Date(c.lastSeen).toLocaleString() : '—'}`))
      panel.append(await snapshotOf(c.id))
    } else if (p.kind === 'ticket') {
      const tk = p.ticket
      clear(panel)
      panel.append(el('h2', {}, tk.title), el('p', {}, `${tk.id} · ${t(tk.status)} · ${t(tk.severity)}`), el('p', {}, `${t('unit')}: ${tk.unitName}`), el('p', {}, `${t('slaLeft')}: ${fmtLeft(tk.slaLeftMs)}`))
    }
  } catch (e) {
    clear(panel)
    panel.append(el('p', { class: 'bad' }, `${t('failed')}: ${String(e)}`))
  }
}

/**
 * The latest snapshot of a camera (the camera gateway keeps one when its
 * picture goes wrong), fetched with the token and shown; or why there is
 * none. A deployment without a camera gateway has no such route (404).
 */
async function snapshotOf(cameraId: string): Promise<HTMLElement> {
  const none = (key: string): HTMLElement => el('p', { class: 'muted', id: 'camera-snapshot' }, t(key))
  let list: { items: { ts: number; url: string }[] }
  try {
    list = await getJson<{ items: { ts: number; url: string }[] }>(`/api/cameras/${encodeURIComponent(cameraId)}/snapshots?limit=1`)
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return none('noCameraGateway')
    throw e
  }
  const latest = list.items[0]
  if (!latest) return none('noSnapshot')
  const url = URL.createObjectURL(new Blob([await getBuffer(latest.url)], { type: 'image/jpeg' }))
  return el('figure', { id: 'camera-snapshot' }, el('img', { src: url, alt: `${t('snapshot')} ${cameraId}`, style: 'max-width: 100%' }), el('figcaption', { class: 'muted' }, `${t('snapshot')} · ${new Date(latest.ts).toLocaleString()}`))
}

function renderGrid(g: GridView): void {
  clear(panel)
  const close = el('button', { type: 'button', class: 'close' }, t('close'))
  close.addEventListener('click', () => {
    selected = undefined
    clear(panel)
  })
  const dl = el('dl', { id: 'grid-counts', 'data-grid': String(g.id) })
  const add = (k: string, v: string, key: string): void => void dl.append(el('dt', {}, k), el('dd', { 'data-key': key }, v))
  add(t('healthScore'), Number.isFinite(g.health) ? String(Math.round(g.health)) : '—', 'health')
  for (const s of ['online', 'silent', 'offline', 'unknown'] as const) add(`${t('devices')} · ${t(s)}`, String(g.devices[s] ?? 0), `devices.${s}`)
  add(`${t('devices')}`, String(g.devices.total ?? 0), 'devices.total')
  add(`${t('cameras')}`, String(g.cameras.total ?? 0), 'cameras.total')
  for (const s of ['critical', 'warning', 'info'] as const) add(`${t('openTickets')} · ${t(s)}`, String(g.tickets[s]), `tickets.${s}`)
  panel.append(el('div', { class: 'row' }, el('h2', {}, `${g.name}`), close), el('p', { class: 'muted' }, `${t(g.level)} · ${g.code} · #${g.id}`), dl)
}

async function find(q: string): Promise<void> {
  if (!q) return
  if (/^T-\d{8}-\d+$/.test(q)) {
    const r = await getJson<{ ticket: TicketView | null }>(`/api/tickets/${encodeURIComponent(q)}`).catch(() => undefined)
    if (r?.ticket) {
      map.flyTo(r.ticket.place.lon, r.ticket.place.lat, 15)
      return void showPicked({ kind: 'ticket', ticket: r.ticket })
    }
  }
  if (/^D\d+$/.test(q)) {
    const d = await getJson<{ lon: number; lat: number }>(`/api/devices/${encodeURIComponent(q)}`).catch(() => undefined)
    if (d) {
      map.flyTo(d.lon, d.lat, 16)
      return void showPicked({ kind: 'device', id: q })
    }
  }
  if (/^\d+$/.test(q)) {
    const g = await getJson<{ grid: GridView & { centroid: [number, number] | null } }>(`/api/grids/${q}?limit=1`).catch(() => undefined)
    if (g?.grid.centroid) {
      map.flyTo(g.grid.centroid[0], g.grid.centroid[1], g.grid.level === 'district' ? 11 : g.grid.level === 'street' ? 12.5 : 14.5)
      return void showPicked({ kind: 'grid', id: g.grid.id, level: g.grid.level as 'district' | 'street' | 'community' | 'micro' | 'special' })
    }
  }
  flash(`${q}: ?`, true)
}

async function loadTickets(): Promise<void> {
  try {
    const page = await getJson<{ items: TicketView[] }>('/api/tickets?open=true&sort=sla&limit=200')
    tickets = page.items
    map.setTickets(tickets)
    renderTickets()
  } catch (e) {
    console.warn('tickets', e)
  }
}

async function loadMode(): Promise<void> {
  try {
    modeInForce = (await getJson<{ city: string }>('/api/modes')).city
    renderHeader()
  } catch (e) {
    console.warn('modes', e)
  }
}

/** The token's role; anonymous (no token, or one the server does not know) is a viewer. */
async function loadRole(): Promise<void> {
  role = token() ? await getJson<{ role: string }>('/api/me').then((m) => m.role, () => 'viewer') : 'viewer'
  renderHeader()
}

function renderAll(): void {
  renderHeader()
  renderLegend()
  renderControls()
  renderTimebar()
  renderTickets()
  if (selected) void showPicked(selected)
}

map.tooltip = (p, state) => {
  if (p.kind === 'grid') {
    const r = state?.rowOf.get(p.id)
    const h = r === undefined ? Number.NaN : (state?.health[r] ?? Number.NaN)
    if (p.level === 'special') return `${t('special')} #${p.id}`
    return `${t(p.level)} #${p.id}\n${t('healthScore')}: ${Number.isFinite(h) ? Math.round(h) : '—'}`
  }
  if (p.kind === 'ticket') return `${p.ticket.title}\n${t(p.ticket.status)}`
  return `${t(p.kind === 'device' ? 'devices' : 'cameras')} ${p.id}`
}
map.onHover = (text) => {
  tooltip.textContent = text ?? ''
  tooltip.style.display = text ? 'block' : 'none'
}
mapBox.addEventListener('mousemove', (e) => {
  tooltip.style.left = `${e.clientX + 12}px`
  tooltip.style.top = `${e.clientY + 12}px`
})
map.onPick = (p) => void showPicked(p)
map.onLevel = () => {
  // The slider follows the drawn level: a past hour stays chosen, its frames fetched for the new level.
  if (frame >= 0) void seek(frame)
  else renderTimebar()
}
live.onState = (on) => {
  liveState = on
  renderHeader()
}

renderAll()
live.connect()
// The base map, where the deployment names one; the grids draw without it meanwhile.
void getJson<{ basemapStyleUrl: string }>('/api/map/config').then(async (c) => {
  if (!c.basemapStyleUrl) return
  const base = await startBasemap(mapBox, c.basemapStyleUrl, map.view)
  map.onView = (v) => base.follow(v)
  base.follow(map.view)
}).catch((e: unknown) => console.warn('base map', e))
await map.start()
await Promise.all([loadTickets(), loadMode(), loadRole(), loadIngest(),
  getJson<{ devicesByType: Record<string, number> }>('/api/v1/city').then((c) => {
    deviceTypes = Object.keys(c.devicesByType)
    renderControls()
  }, (e: unknown) => console.warn('city', e))])
setInterval(() => void loadTickets(), 3_000)
setInterval(() => void loadMode(), 15_000)
setInterval(() => void loadIngest(), 5_000)
setInterval(() => void loadIncidents(), 30_000)
// For tests and the benchmark: the map and its state, and the live feed, from the page.
;(window as unknown as { citytwin: unknown }).citytwin = { map, live, ready: true }
