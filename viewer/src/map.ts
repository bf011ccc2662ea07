// The grid map: deck.gl layers over binary attributes, at the level of
// detail the zoom calls for. Districts and streets are drawn whole;
// community and micro-grids only inside the view (fetched by box); devices
// and cameras only up close and capped by the API. Live deltas recolour in
// place (updateTriggers on a version), so no layer is rebuilt for them.
// Over them, on request: the special grids, an incident heatmap, and a
// past hour of the grids from the time slider instead of the live state.
import { Deck, MapView, WebMercatorViewport, type AccessorContext, type Color, type MapViewState, type PickingInfo } from '@deck.gl/core'
import { HeatmapLayer } from '@deck.gl/aggregation-layers'
import { IconLayer, LineLayer, ScatterplotLayer, SolidPolygonLayer } from '@deck.gl/layers'
import { getBuffer, getJson, type TicketView } from './api.ts'
import { CAMERAS_MIN_ZOOM, decodeGeometry, levelForZoom, POINTS_MIN_ZOOM, type GridGeometry, type MapLevel } from './data/geometry.ts'
import { GridState, rowToColumns, type ColourBy } from './data/grid-state.ts'
import { PointSet, type PointColumns } from './data/points.ts'
import { frameRows, type ReplayFrames } from './data/replay.ts'
import type { Delta, LiveClient } from './live.ts'
import { contextAttributes } from './gl.ts'
import { ticketIconAtlas, type IconMapping } from './ui/icons.ts'

type Box = [number, number, number, number]

export type Picked =
  | { kind: 'grid'; id: number; level: MapLevel | 'special' }
  | { kind: 'device' | 'camera'; id: string }
  | { kind: 'ticket'; ticket: TicketView }

interface LevelData {
  level: MapLevel
  geometry: GridGeometry
  state: GridState
  /** The box it was fetched for; undefined: the whole level. */
  box: Box | undefined
}

const BY_BOX: ReadonlySet<MapLevel> = new Set(['community', 'micro'])

/** Marker size in pixels by severity. */
const ICON_PX: Readonly<Record<string, number>> = { info: 18, warning: 24, critical: 32 }

/** Where tickets were raised, for the heatmap (GET /api/map/incidents). */
export interface Incidents {
  lon: number[]
  lat: number[]
  severity: number[]
  open: number[]
}

/** What the point and ticket layers show; undefined: everything. */
export interface MapFilters {
  deviceType?: string
  /** A device status index (unknown, online, silent, offline). */
  deviceStatus?: number
  severity?: string
}

const contains = (outer: Box, inner: Box): boolean => inner[0] >= outer[0] && inner[1] >= outer[1] && inner[2] <= outer[2] && inner[3] <= outer[3]
const grow = (b: Box, f: number): Box => {
  const w = (b[2] - b[0]) * f
  const h = (b[3] - b[1]) * f
  return [b[0] - w, b[1] - h, b[2] + w, b[3] + h]
}

export class GridMap {
  readonly deck: Deck<MapView>
  readonly #live: LiveClient
  #view: MapViewState
  #size = { width: 1, height: 1 }
  #districts: GridGeometry | undefined
  #current: LevelData | undefined
  #wholeLevels = new Map<MapLevel, LevelData>()
  #points: PointSet | undefined
  #cameras: PointSet | undefined
  #pointsBox: Box | undefined
  #tickets: TicketView[] = []
  #shownTickets: TicketView[] = []
  #filters: MapFilters = {}
  #special: GridGeometry | undefined
  #showSpecial = false
  #heat: { data: { length: number; attributes: { getPosition: { value: Float32Array; size: 2 }; getWeight: { value: Float32Array; size: 1 } } } } | undefined
  #replay: { state: GridState; geometry: GridGeometry } | undefined
  #icons: { atlas: string; mapping: IconMapping } | undefined
  #colourBy: ColourBy = 'health'
  #loading = 0
  #frames: number[] = []
  #frameWaiters: ((at: number) => void)[] = []
  onPick: (p: Picked) => void = () => undefined
  onHover: (text: string | null) => void = () => undefined
  /** Told of every camera move (the base map follows it). */
  onView: (view: MapViewState) => void = () => undefined
  /** Told when the drawn level or box changes (the time slider then fetches that level's frames). */
  onLevel: (level: MapLevel, box: Box | undefined) => void = () => undefined
  tooltip: (p: Picked, state: GridState | undefined) => string = () => ''

  constructor(parent: HTMLDivElement, live: LiveClient) {
    this.#live = live
    this.#view = { longitude: 113.65, latitude: 34.75, zoom: 9.5, pitch: 0, bearing: 0 }
    this.deck = new Deck<MapView>({
      parent,
      deviceProps: { webgl: contextAttributes() },
      views: new MapView({ repeat: false }),
      initialViewState: this.#view,
      controller: true,
      onViewStateChange: ({ viewState }) => {
        this.#view = viewState
        this.onView(viewState)
        this.#scheduleLod()
        return viewState
      },
      onResize: (size) => {
        this.#size = size
      },
      onAfterRender: () => {
        const now = performance.now()
        this.#frames.push(now)
        if (this.#frames.length > 600) this.#frames.splice(0, 300)
        const waiting = this.#frameWaiters
        this.#frameWaiters = []
        for (const w of waiting) w(now)
      },
      getCursor: ({ isHovering }) => (isHovering ? 'pointer' : 'grab'),
      onClick: (info) => {
        const p = this.#picked(info)
        if (p) this.onPick(p)
      },
      onHover: (info) => {
        const p = this.#picked(info)
        this.onHover(p ? this.tooltip(p, this.#current?.state) : null)
      },
      layers: [],
    })
    live.onDelta = (d) => this.#applyDelta(d)
  }

  /** Loads the districts, fits the city in view, and starts following it live. */
  async start(): Promise<void> {
    this.#districts = decodeGeometry(await getBuffer('/api/map/grids?level=district'))
    const rect = this.deck.getCanvas()?.getBoundingClientRect()
    this.#size = { width: Math.max(1, rect?.width ?? 800), height: Math.max(1, rect?.height ?? 600) }
    const b = this.#districts.bounds
    const fitted = new WebMercatorViewport(this.#size).fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 24 })
    this.#view = { longitude: fitted.longitude, latitude: fitted.latitude, zoom: fitted.zoom, pitch: 0, bearing: 0 }
    this.deck.setProps({ initialViewState: { ...this.#view } })
    this.onView(this.#view)
    await this.#lod()
  }

  get view(): MapViewState {
    return this.#view
  }

  get level(): MapLevel | undefined {
    return this.#current?.level
  }

  get busy(): boolean {
    return this.#loading > 0
  }

  /** Resolves when deck.gl has drawn its next frame, with the time it finished (for the benchmark). */
  nextFrame(): Promise<number> {
    return new Promise((resolve) => this.#frameWaiters.push(resolve))
  }

  /** Recent frame times (ms between rendered frames), for the benchmark. */
  frameTimes(): number[] {
    const f = this.#frames
    return f.slice(1).map((t, i) => t - (f[i] ?? t))
  }

  /** The state of a grid as drawn (for tests and the panel). */
  drawnState(id: number): { health: number; tickets: number[] } | undefined {
    const state = this.#drawnGridState()
    const r = state?.rowOf.get(id)
    if (!state || r === undefined) return undefined
    return { health: state.health[r] ?? Number.NaN, tickets: [state.tickets[3 * r] ?? 0, state.tickets[3 * r + 1] ?? 0, state.tickets[3 * r + 2] ?? 0] }
  }

  /** What colours the grids: a replayed hour of the drawn level, or the live state. */
  #drawnGridState(): GridState | undefined {
    const cur = this.#current
    const r = this.#replay
    return r && cur && r.geometry === cur.geometry ? r.state : cur?.state
  }

  /** The box the drawn level was fetched for (undefined: the whole level). */
  get levelBox(): Box | undefined {
    return this.#current?.box
  }

  /** Shows frame `f` of `frames` instead of the live state, while they are for the drawn level. */
  replayFrame(frames: ReplayFrames, f: number): void {
    const cur = this.#current
    if (!cur || frames.level !== cur.level) return
    let r = this.#replay
    if (!r || r.geometry !== cur.geometry) {
      r = { state: new GridState(cur.geometry.rowOf, this.#colourBy), geometry: cur.geometry }
      this.#replay = r
    }
    r.state.apply(frameRows(frames, f))
    this.#render()
  }

  /** Back to the live state. */
  stopReplay(): void {
    this.#replay = undefined
    this.#render()
  }

  get replaying(): boolean {
    return this.#replay !== undefined
  }

  set filters(f: MapFilters) {
    this.#filters = f
    this.#points?.setFilter({ type: f.deviceType, status: f.deviceStatus })
    this.#filterTickets()
    this.#render()
  }

  /** Draws the special grids (stations, CBDs, schools...) over the others. */
  async showSpecial(on: boolean): Promise<void> {
    this.#showSpecial = on
    if (on && !this.#special) this.#special = decodeGeometry(await getBuffer('/api/map/grids?level=special'))
    this.#render()
  }

  get hasIncidents(): boolean {
    return this.#heat !== undefined
  }

  /** Draws a heatmap of where tickets were raised in the last day; undefined: none. */
  setIncidents(x: Incidents | undefined): void {
    if (!x) {
      this.#heat = undefined
    } else {
      const n = x.lon.length
      const pos = new Float32Array(2 * n)
      const weight = new Float32Array(n)
      for (let i = 0; i < n; i++) {
        pos[2 * i] = x.lon[i] ?? 0
        pos[2 * i + 1] = x.lat[i] ?? 0
        // critical 4, warning 2, info 1; done tickets count half
        weight[i] = ([1, 2, 4][x.severity[i] ?? 0] ?? 1) * (x.open[i] ? 1 : 0.5)
      }
      this.#heat = { data: { length: n, attributes: { getPosition: { value: pos, size: 2 }, getWeight: { value: weight, size: 1 } } } }
    }
    this.#render()
  }

  set colourBy(by: ColourBy) {
    this.#colourBy = by
    if (this.#current) this.#current.state.colourBy = by
    if (this.#replay) this.#replay.state.colourBy = by
    this.#render()
  }

  setTickets(list: TicketView[]): void {
    this.#tickets = list
    this.#filterTickets()
    this.#render()
  }

  /** The tickets the severity filter lets through: drawn here, and listed by the page. */
  get shownTickets(): readonly TicketView[] {
    return this.#shownTickets
  }

  #filterTickets(): void {
    const sev = this.#filters.severity
    this.#shownTickets = sev === undefined ? this.#tickets : this.#tickets.filter((t) => t.severity === sev)
  }

  flyTo(lon: number, lat: number, zoom: number): void {
    this.#view = { ...this.#view, longitude: lon, latitude: lat, zoom, transitionDuration: 0 }
    this.deck.setProps({ initialViewState: { ...this.#view } })
    this.onView(this.#view)
    this.#scheduleLod()
  }

  #lodTimer: ReturnType<typeof setTimeout> | undefined
  #scheduleLod(): void {
    clearTimeout(this.#lodTimer)
    this.#lodTimer = setTimeout(() => void this.#lod(), 150)
  }

  #viewBox(): Box {
    const vp = new WebMercatorViewport({ ...this.#size, longitude: this.#view.longitude, latitude: this.#view.latitude, zoom: this.#view.zoom })
    const [w, s, e, n] = vp.getBounds()
    return [w, s, e, n]
  }

  /** Loads what the zoom and the view call for, if it is not loaded yet. */
  #lodSeq = 0
  #subscribed = ''

  async #lod(): Promise<void> {
    const level = levelForZoom(this.#view.zoom)
    const box = this.#viewBox()
    // A later call supersedes this one: what it fetched must not replace a newer view.
    const seq = ++this.#lodSeq
    const superseded = (): boolean => seq !== this.#lodSeq
    this.#loading++
    try {
      const cur = this.#current
      const stale = !cur || cur.level !== level || (cur.box !== undefined && !contains(cur.box, box))
      if (stale) {
        let data = this.#wholeLevels.get(level)
        if (!data) {
          const fetchBox = BY_BOX.has(level) ? grow(box, 0.25) : undefined
          const q = fetchBox ? `&bbox=${fetchBox.map((x) => x.toFixed(5)).join(',')}` : ''
          const geometry = decodeGeometry(await getBuffer(`/api/map/grids?level=${level}${q}`))
          if (superseded()) return
          data = { level, geometry, state: new GridState(geometry.rowOf, this.#colourBy), box: fetchBox }
          if (!fetchBox) this.#wholeLevels.set(level, data)
        }
        this.#current = data
      }
      const wantPoints = this.#view.zoom >= POINTS_MIN_ZOOM
      const wantCameras = this.#view.zoom >= CAMERAS_MIN_ZOOM
      if (wantPoints && (!this.#points || !this.#pointsBox || !contains(this.#pointsBox, box) || wantCameras !== (this.#cameras !== undefined))) {
        // A small margin: every point fetched is drawn, on or off screen.
        const pbox = grow(box, 0.15)
        const q = pbox.map((x) => x.toFixed(5)).join(',')
        const [points, cameras] = await Promise.all([
          getJson<PointColumns>(`/api/map/points?kind=devices&bbox=${q}`),
          wantCameras ? getJson<PointColumns>(`/api/map/points?kind=cameras&bbox=${q}`) : undefined,
        ])
        if (superseded()) return
        this.#points = new PointSet(points)
        this.#cameras = cameras ? new PointSet(cameras) : undefined
        this.#points.setFilter({ type: this.#filters.deviceType, status: this.#filters.deviceStatus })
        this.#pointsBox = pbox
      } else if (!wantPoints) {
        this.#points = undefined
        this.#cameras = undefined
        this.#pointsBox = undefined
      }
      this.#subscribe()
      this.#render()
      if (stale && this.#current) this.onLevel(this.#current.level, this.#current.box)
    } finally {
      this.#loading--
    }
  }

  /** Follows what is drawn; only when that changed (a new subscription is answered with a full snapshot). */
  #subscribe(): void {
    const cur = this.#current
    const what = `${cur?.level ?? ''}|${cur?.box?.join(',') ?? ''}|${this.#pointsBox?.join(',') ?? ''}`
    if (what === this.#subscribed) return
    this.#subscribed = what
    const subs: Parameters<LiveClient['subscribe']>[0] = []
    if (cur) subs.push(cur.box ? { grids: [...cur.geometry.ids] } : { level: cur.level })
    if (this.#pointsBox) subs.push({ bbox: this.#pointsBox })
    this.#live.subscribe(subs)
  }

  #applyDelta(d: Delta): void {
    const cols = this.#live.hello?.grid
    let changed = false
    if (d.grids && cols && this.#current) changed = this.#current.state.apply(d.grids.map((row) => rowToColumns(cols, row))) > 0
    if (d.devices && this.#points) changed = this.#points.update(d.devices.map(([id, status]) => [id, status] as const)) > 0 || changed
    if (d.cameras && this.#cameras) changed = this.#cameras.update(d.cameras.map(([id, status]) => [id, status] as const)) > 0 || changed
    if (changed) this.#render()
  }

  #picked(info: PickingInfo): Picked | undefined {
    if (!info.layer || info.index < 0) return undefined
    const id = info.layer.id
    if (id.startsWith('grids-') && this.#current) return { kind: 'grid', id: this.#current.geometry.ids[info.index] ?? 0, level: this.#current.level }
    if (id === 'special' && this.#special) return { kind: 'grid', id: this.#special.ids[info.index] ?? 0, level: 'special' }
    if (id === 'devices' && this.#points) return { kind: 'device', id: this.#points.ids[this.#points.drawnRow(info.index)] ?? '' }
    if (id === 'cameras' && this.#cameras) return { kind: 'camera', id: this.#cameras.ids[this.#cameras.drawnRow(info.index)] ?? '' }
    if (id === 'tickets') {
      const t = this.#shownTickets[info.index]
      return t ? { kind: 'ticket', ticket: t } : undefined
    }
    return undefined
  }

  /** Grid outlines as single segments: software GL draws a segment quad much faster than a path's joined, mitred ones. */
  #outline(id: string, g: GridGeometry, width: number, color: Color): LineLayer {
    return new LineLayer({ id, data: g.segments, widthUnits: 'pixels', getWidth: width, getColor: color })
  }

  /** Points of a set, coloured from its typed array through deck.gl's own target (no allocation per point per update). */
  #pointLayer(id: string, set: PointSet, style: { getRadius: number; stroked?: boolean; getLineColor?: Color; lineWidthUnits?: 'pixels'; getLineWidth?: number }): ScatterplotLayer {
    return new ScatterplotLayer({
      id,
      data: set.data,
      pickable: true,
      radiusUnits: 'pixels',
      ...style,
      getFillColor: (_: unknown, { index, target }: AccessorContext<unknown>): Color => {
        const row = set.drawnRow(index)
        for (let k = 0; k < 4; k++) target[k] = set.colors[4 * row + k] ?? 0
        return target as unknown as Color // deck.gl hands a 4-slot array for a colour accessor
      },
      updateTriggers: { getFillColor: set.version },
    })
  }

  #render(): void {
    const cur = this.#current
    const layers = []
    if (cur) {
      const g = cur.geometry
      const state = this.#drawnGridState() ?? cur.state
      layers.push(new SolidPolygonLayer({
        id: `grids-${cur.level}-${cur.box?.join(',') ?? 'all'}`,
        data: g.polygons,
        _normalize: false,
        pickable: true,
        getFillColor: (_: unknown, { index, target }: AccessorContext<unknown>): Color => {
          // Into deck.gl's own target array: no allocation per grid per update.
          for (let k = 0; k < 4; k++) target[k] = state.colors[4 * index + k] ?? 0
          return target as unknown as Color // deck.gl hands a 4-slot array for a colour accessor
        },
        // A replayed hour is another state: its own version space.
        updateTriggers: { getFillColor: `${state === cur.state ? 'live' : 'replay'}-${state.version}` },
      }))
      // Outlines cost software GL more than the fills (a path is many
      // instanced segments): only the coarse levels get their own.
      if (!BY_BOX.has(cur.level)) layers.push(this.#outline(`outlines-${cur.level}-${cur.box?.join(',') ?? 'all'}`, g, 1, [255, 255, 255, 140]))
    }
    const districts = this.#districts
    if (districts && cur?.level !== 'district') layers.push(this.#outline('district-outlines', districts, 2.5, [45, 52, 54, 220]))
    if (this.#showSpecial && this.#special) {
      layers.push(new SolidPolygonLayer({
        id: 'special',
        data: this.#special.polygons,
        _normalize: false,
        pickable: true,
        getFillColor: [108, 92, 231, 90],
      }))
    }
    if (this.#heat) {
      layers.push(new HeatmapLayer({
        id: 'incidents',
        data: this.#heat.data,
        radiusPixels: 40,
        intensity: 1,
        threshold: 0.05,
        aggregation: 'SUM',
      }))
    }
    // Devices without an outline: for software GL a stroked point costs about twice a plain one, and devices are many.
    if (this.#points && this.#points.data.length > 0) layers.push(this.#pointLayer('devices', this.#points, { getRadius: 4 }))
    // Cameras: larger, dark-edged points, coloured by their state.
    if (this.#cameras && this.#cameras.data.length > 0) {
      layers.push(this.#pointLayer('cameras', this.#cameras, { getRadius: 6, stroked: true, getLineColor: [45, 52, 54, 255], lineWidthUnits: 'pixels', getLineWidth: 2 }))
    }
    if (this.#shownTickets.length > 0) {
      this.#icons ??= ticketIconAtlas()
      layers.push(new IconLayer<TicketView>({
        id: 'tickets',
        data: this.#shownTickets,
        pickable: true,
        iconAtlas: this.#icons.atlas,
        iconMapping: this.#icons.mapping,
        getIcon: (t) => t.severity,
        sizeUnits: 'pixels',
        getSize: (t) => ICON_PX[t.severity] ?? 18,
        getPosition: (t) => [t.place.lon, t.place.lat],
      }))
    }
    this.deck.setProps({ layers })
  }
}
