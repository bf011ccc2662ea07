// The live feed, /api/live: a WebSocket that sends each client what changed
// in what it subscribed to, once per tick, coalesced per device, camera and
// grid (a device that reported ten times in a tick is sent once, with its
// state at send time). Rows are compact arrays whose columns the first
// message ("hello") names.
//
// Client -> server, JSON:
//   {"subscribe": {"level": "district"}}          every grid of a level
//   {"subscribe": {"grids": [12, 34]}}             these grids (0: the city)
//   {"subscribe": {"bbox": [w, s, e, n]}}          devices and cameras inside
//   {"unsubscribe": true}                          everything
// Server -> client: {"type": "hello", ...columns}, then
//   {"type": "delta", "t": <ms>, "grids": [[...]], "devices": [[...]], "cameras": [[...]]}
//   {"type": "error", "message": "..."} for a message it could not use.
// A client that does not read falls behind only in its own pending sets
// (bounded by the size of the city), never in a queue of messages. A
// message carries at most api.liveMaxRowsPerMessage rows (the rest goes on
// the next ticks), and a client holds at most api.liveMaxBoxes boxes: a box
// over the whole city is sent in parts, not built as one message of tens of
// megabytes in one turn of the loop that also feeds the twin.
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { z } from 'zod'
import { logger } from '../../lib/log.ts'
import { counter, gauge } from '../../lib/metrics.ts'
import { GRID_LEVELS } from '../../registry/city.ts'
import { DEVICE_STATUSES } from '../state/device.ts'
import type { LiveTwin } from '../state/live-twin.ts'
import { CAMERA_STATUSES, CITY_ID, inBox, type Twin } from '../state/twin.ts'

const log = logger('live')
const clientsGauge = gauge('citytwin_live_clients', 'Live WebSocket clients connected')
const sentTotal = counter('citytwin_live_rows_sent_total', 'Rows sent on the live feed, by kind', ['kind'])
const refusedTotal = counter('citytwin_live_refused_total', 'Live client messages answered with an error (not a subscription, too many boxes)')

export const GRID_COLUMNS = ['id', 'health', 'devOnline', 'devSilent', 'devOffline', 'devUnknown', 'camOk', 'camOffline', 'camDegraded', 'camUnknown', 'ticketsInfo', 'ticketsWarning', 'ticketsCritical', 'camTampered'] as const
export const DEVICE_COLUMNS = ['id', 'status', 'lastActivity', 'openTickets'] as const
export const CAMERA_COLUMNS = ['id', 'status'] as const

const subscribeMessage = z.union([
  z.strictObject({ subscribe: z.strictObject({ level: z.enum(['city', ...GRID_LEVELS]) }) }),
  z.strictObject({ subscribe: z.strictObject({ grids: z.array(z.number().int().min(0)).max(100_000) }) }),
  z.strictObject({ subscribe: z.strictObject({ bbox: z.tuple([z.number().min(-180).max(180), z.number().min(-90).max(90), z.number().min(-180).max(180), z.number().min(-90).max(90)])
    .refine(([w, s, e, n]) => w <= e && s <= n, 'a box is [west, south, east, north], west <= east and south <= north') }) }),
  z.strictObject({ unsubscribe: z.literal(true) }),
])

interface Client {
  ws: WebSocket
  levels: Set<string>
  grids: Set<number>
  bboxes: (readonly [number, number, number, number])[]
  pendingGrids: Set<number>
  pendingDevices: Set<number>
  pendingCameras: Set<number>
}

/** Stop sending to a client while this much is still unsent on its socket. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024

export class LiveFeed {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 })
  readonly #clients = new Set<Client>()
  readonly #live: LiveTwin
  readonly #maxClients: number
  readonly #maxBoxes: number
  readonly #maxRows: number
  #timer: NodeJS.Timeout | undefined

  constructor(opts: { live: LiveTwin; tickMs: number; maxClients: number; maxBoxes?: number; maxRowsPerMessage?: number }) {
    this.#live = opts.live
    this.#maxClients = opts.maxClients
    this.#maxBoxes = opts.maxBoxes ?? 16
    this.#maxRows = opts.maxRowsPerMessage ?? 5_000
    this.#timer = setInterval(() => this.#tick(), opts.tickMs)
    this.#timer.unref()
  }

  get clients(): number {
    return this.#clients.size
  }

  /** Takes over an HTTP upgrade to /api/live (authorization is checked by the caller). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#clients.size >= this.#maxClients) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\r\ntoo many live clients\n')
      return
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws))
  }

  close(): void {
    clearInterval(this.#timer)
    for (const c of this.#clients) c.ws.close(1001, 'server stopping')
    this.#clients.clear()
    clientsGauge.set(0)
  }

  #accept(ws: WebSocket): void {
    const c: Client = { ws, levels: new Set(), grids: new Set(), bboxes: [], pendingGrids: new Set(), pendingDevices: new Set(), pendingCameras: new Set() }
    this.#clients.add(c)
    clientsGauge.set(this.#clients.size)
    ws.send(JSON.stringify({ type: 'hello', grid: GRID_COLUMNS, device: DEVICE_COLUMNS, camera: CAMERA_COLUMNS, deviceStatus: DEVICE_STATUSES, cameraStatus: CAMERA_STATUSES }))
    ws.on('message', (data) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(new Uint8Array(data))
      this.#onMessage(c, bytes.toString('utf8'))
    })
    ws.on('close', () => {
      this.#clients.delete(c)
      clientsGauge.set(this.#clients.size)
    })
    ws.on('error', (err) => log.debug({ err }, 'live client error'))
  }

  #onMessage(c: Client, text: string): void {
    let parsed: z.infer<typeof subscribeMessage>
    try {
      parsed = subscribeMessage.parse(JSON.parse(text))
    } catch (e) {
      this.#refuse(c, `not a subscription (see /api/openapi.json, x-live): ${e instanceof Error ? e.message.slice(0, 300) : String(e)}`)
      return
    }
    const twin = this.#live.twin
    if ('unsubscribe' in parsed) {
      c.levels.clear()
      c.grids.clear()
      c.bboxes = []
      c.pendingGrids.clear()
      c.pendingDevices.clear()
      c.pendingCameras.clear()
      return
    }
    const s = parsed.subscribe
    // A new subscription starts with the current state of what it covers.
    if ('level' in s) {
      c.levels.add(s.level)
      if (s.level === 'city') c.pendingGrids.add(CITY_ID)
      else for (const g of twin.grids) if (g.level === s.level) c.pendingGrids.add(g.id)
    } else if ('grids' in s) {
      for (const id of s.grids) if (twin.hasGrid(id)) {
        c.grids.add(id)
        c.pendingGrids.add(id)
      }
    } else {
      const b = s.bbox
      if (c.bboxes.length >= this.#maxBoxes) {
        this.#refuse(c, `at most ${this.#maxBoxes} boxes at once (api.liveMaxBoxes); send {"unsubscribe": true} and subscribe again`)
        return
      }
      c.bboxes.push(b)
      twin.devices.forEach((d, i) => { if (inBox(d.lon, d.lat, b)) c.pendingDevices.add(i) })
      twin.cameras.forEach((k, i) => { if (inBox(k.lon, k.lat, b)) c.pendingCameras.add(i) })
    }
    this.#send(c, Date.now())
  }

  #refuse(c: Client, message: string): void {
    refusedTotal.inc()
    c.ws.send(JSON.stringify({ type: 'error', message }))
  }

  #tick(): void {
    let twin: Twin
    try {
      twin = this.#live.twin
    } catch {
      return // not loaded yet: nothing has changed for anyone
    }
    const changes = twin.drainChanges()
    if (this.#clients.size === 0) return
    const now = Date.now()
    for (const c of this.#clients) {
      for (const id of changes.grids) {
        if (c.grids.has(id) || c.levels.has(id === CITY_ID ? 'city' : (twin.grid(id)?.level ?? ''))) c.pendingGrids.add(id)
      }
      if (c.bboxes.length > 0) {
        for (const i of changes.devices) {
          const d = twin.devices[i]
          if (d && c.bboxes.some((b) => inBox(d.lon, d.lat, b))) c.pendingDevices.add(i)
        }
        for (const i of changes.cameras) {
          const k = twin.cameras[i]
          if (k && c.bboxes.some((b) => inBox(k.lon, k.lat, b))) c.pendingCameras.add(i)
        }
      }
      this.#send(c, now)
    }
  }

  #send(c: Client, now: number): void {
    if (c.pendingGrids.size + c.pendingDevices.size + c.pendingCameras.size === 0) return
    if (c.ws.readyState !== c.ws.OPEN || c.ws.bufferedAmount > MAX_BUFFERED_BYTES) return // it catches up later, coalesced
    const twin = this.#live.twin
    // Up to the message's rows, grids first (the map's colours), then devices, then cameras; the rest stays
    // pending. Grids take at most half while devices or cameras wait, so a busy level cannot starve them.
    let room = this.#maxRows
    const others = c.pendingDevices.size + c.pendingCameras.size
    const grids = take(c.pendingGrids, others > 0 ? Math.ceil(room / 2) : room).map((id) => gridRow(twin, id)).filter((r) => r !== undefined)
    room -= grids.length
    const devices = take(c.pendingDevices, room).map((i) => [twin.devices[i]?.id ?? '', DEVICE_STATUSES.indexOf(twin.deviceStatus(i)), twin.deviceLastActivity(i), twin.deviceOpenTickets(i)])
    room -= devices.length
    const cameras = take(c.pendingCameras, room).map((i) => [twin.cameras[i]?.id ?? '', CAMERA_STATUSES.indexOf(twin.cameraStatus(i))])
    c.ws.send(JSON.stringify({ type: 'delta', t: now, grids, devices, cameras }))
    sentTotal.inc({ kind: 'grid' }, grids.length)
    sentTotal.inc({ kind: 'device' }, devices.length)
    sentTotal.inc({ kind: 'camera' }, cameras.length)
  }
}

/** Removes up to `n` items from `set`, oldest first, and returns them. */
function take<T>(set: Set<T>, n: number): T[] {
  const out: T[] = []
  for (const v of set) {
    if (out.length >= n) break
    out.push(v)
  }
  for (const v of out) set.delete(v)
  return out
}

function gridRow(twin: Twin, id: number): number[] | undefined {
  const k = twin.counts(id)
  if (!k) return undefined
  return [id, k.health, k.devices.online, k.devices.silent, k.devices.offline, k.devices.unknown, k.cameras.ok, k.cameras.offline, k.cameras.degraded, k.cameras.unknown, k.tickets.info, k.tickets.warning, k.tickets.critical, k.cameras.tampered]
}
