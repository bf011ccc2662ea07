// The twin viewer: the grid map, the side panel of what was clicked, the
// live ticket list with the operator's actions, the operating mode, and
// the language toggle. Everything comes from the API of the same origin.
import './style.css'
import { ApiError, getJson, postJson, setToken, token, type GridView, type TicketView } from './api.ts'
import { currentLang, onLang, setLang, t, type Lang } from './i18n.ts'
import { LiveClient } from './live.ts'
import { GridMap, type Picked } from './map.ts'
import { clear, el, sparkline } from './ui/dom.ts'

const app = document.getElementById('app') as HTMLDivElement
const header = el('header')
const mapBox = el('div', { id: 'map' })
const side = el('aside', { id: 'side' })
const panel = el('section', { id: 'panel' })
const ticketsBox = el('section', { id: 'tickets' })
// Made once: the ticket list is redrawn every few seconds, and an operator may be typing here.
const tokenInput = el('input', { id: 'token', type: 'password', value: token() })
tokenInput.addEventListener('change', () => setToken(tokenInput.value.trim()))
const tokenLabel = el('label', {})
const ticketsTitle = el('h2', {})
const ticketsBody = el('div', {})
ticketsBox.append(ticketsTitle, tokenLabel, ticketsBody)
const legend = el('div', { id: 'legend' })
const tooltip = el('div', { id: 'tooltip' })
side.append(panel, ticketsBox)
app.append(header, mapBox, side, legend, tooltip)

const live = new LiveClient()
const map = new GridMap(mapBox, live)
let selected: Picked | undefined
let tickets: TicketView[] = []
let liveState = false
let colourBy: 'health' | 'tickets' = 'health'
let modeInForce = 'normal'

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
  header.append(el('h1', {}, t('title')), search, by, mode, dot, lang)
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
  ticketsTitle.textContent = `${t('ticketList')} (${tickets.length})`
  tokenInput.placeholder = t('tokenHint')
  if (tokenLabel.firstChild?.nodeType !== Node.TEXT_NODE || tokenLabel.firstChild.textContent !== t('token')) {
    clear(tokenLabel)
    tokenLabel.append(t('token'), tokenInput)
  }
  clear(ticketsBody)
  if (tickets.length === 0) ticketsBody.append(el('p', { class: 'muted' }, t('noTickets')))
  const list = el('ol', { id: 'ticket-list' })
  for (const tk of tickets) {
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
      return void showPicked({ kind: 'grid', id: g.grid.id, level: g.grid.level as 'district' | 'street' | 'community' | 'micro' })
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

function renderAll(): void {
  renderHeader()
  renderLegend()
  renderTickets()
  if (selected) void showPicked(selected)
}

map.tooltip = (p, state) => {
  if (p.kind === 'grid') {
    const r = state?.rowOf.get(p.id)
    const h = r === undefined ? Number.NaN : (state?.health[r] ?? Number.NaN)
    return `${t(p.level)} #${p.id}\n${t('healthScore')}: ${Number.isFinite(h) ? Math.round(h) : '—'}`
  }
  if (p.kind === 'ticket') return `${p.ticket.title}\n${t(p.ticket.status)}`
  return `${p.id}`
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
live.onState = (on) => {
  liveState = on
  renderHeader()
}

renderAll()
live.connect()
await map.start()
await Promise.all([loadTickets(), loadMode()])
setInterval(() => void loadTickets(), 3_000)
setInterval(() => void loadMode(), 15_000)
// For tests and the benchmark: the map and its state, from the page.
;(window as unknown as { citytwin: unknown }).citytwin = { map, ready: true }
