// Devices and cameras provisioned while the system runs: added, changed,
// moved, decommissioned, a device's credentials rotated. Each change is
// written to its table (`devices` or `cameras`: the new row first, then the
// old rows deleted, so it is never missing) and then to its log
// (`device_changes`, `camera_changes`), which the gateways and the twin
// follow: every MQTT gateway process the device log, within
// mqtt.denyListRefreshMs (ingest/mqtt/registry-watch.ts); the twin both,
// within twin.registryRefreshMs. Each log carries the store's clock.
import type { ClickHouseClient } from '@clickhouse/client'
import { CitytwinError } from '../lib/errors.ts'
import { logger } from '../lib/log.ts'
import { CAMERA_KINDS, type Camera, type CameraKind, type Device, type LonLat, type StreamProfile } from './city.ts'
import { DEVICE_TYPE_BY_NAME, type DeviceType } from './device-types.ts'
import { DEFAULT_PROFILE, ID_PATTERN, profileProblem, rtspUrlProblem } from './import.ts'
import { MicroGrids, type MicroGrid, type Place } from './locate.ts'

const log = logger('provision')

export type Location = { lon: number; lat: number; microGridId?: number | undefined } | { microGridId: number; lon?: undefined; lat?: undefined }

export type DeviceChange =
  | { op: 'add'; id: string; type: string; at: Location; intervalS?: number | undefined; installedAt?: number | undefined }
  | { op: 'update'; id: string; type?: string | undefined; intervalS?: number | undefined }
  | { op: 'move'; id: string; at: Location }
  | { op: 'decommission'; id: string }
  | { op: 'rotate'; id: string }

/** A device as the registry holds it: the city model's record and its credential version (ingest/mqtt/tokens.ts). */
export type DeviceRecord = Device & { credentialVersion: number }

export type CameraChange =
  | { op: 'add'; id: string; kind: string; at: Location; rtspUrl: string; profile?: Partial<StreamProfile> | undefined }
  | { op: 'update'; id: string; kind?: string | undefined; rtspUrl?: string | undefined; profile?: Partial<StreamProfile> | undefined }
  | { op: 'move'; id: string; at: Location }
  | { op: 'decommission'; id: string }

/** Where the device log stands (epoch ms of its last change; 0 when nothing was ever provisioned): followers read it before the registry, so nothing falls between. */
export async function deviceLogPosition(client: ClickHouseClient): Promise<number> {
  return logPosition(client, 'device_changes')
}

/**
 * Where the registry as a whole stands: each log's latest change and how
 * many changes it holds (the twin follows both logs, and rebuilds when
 * this changes). The count too: a change is stamped before it is written,
 * so one made at the same moment through another process can land after a
 * later-stamped one, and leave the latest stamp where it was.
 */
export async function registryLogMark(client: ClickHouseClient): Promise<string> {
  const rs = await client.query({
    query: `SELECT (SELECT toUnixTimestamp64Milli(max(at)) FROM device_changes) AS d, (SELECT count() FROM device_changes) AS dn,
              (SELECT toUnixTimestamp64Milli(max(at)) FROM camera_changes) AS c, (SELECT count() FROM camera_changes) AS cn`,
    format: 'JSONEachRow',
  })
  const [r] = await rs.json<{ d: number | string | null; dn: number | string; c: number | string | null; cn: number | string }>()
  return `${r?.d ?? 0}/${r?.dn ?? 0} ${r?.c ?? 0}/${r?.cn ?? 0}`
}

async function logPosition(client: ClickHouseClient, log: 'device_changes' | 'camera_changes'): Promise<number> {
  const rs = await client.query({ query: `SELECT toUnixTimestamp64Milli(max(at)) AS at FROM ${log}`, format: 'JSONEachRow' })
  return Number((await rs.json<{ at: number | string | null }>())[0]?.at ?? 0)
}

/** Why a change was refused; nothing was changed by it. */
export interface Refusal {
  ok: false
  status: 400 | 404 | 409
  code: 'DEVICE_NOT_FOUND' | 'DEVICE_EXISTS' | 'CAMERA_NOT_FOUND' | 'CAMERA_EXISTS' | 'BAD_REQUEST'
  message: string
}

export type ProvisionResult = { ok: true; op: DeviceChange['op']; device: DeviceRecord; at: number } | Refusal
export type CameraProvisionResult = { ok: true; op: CameraChange['op']; camera: Camera; at: number } | Refusal

const COLUMNS = 'id, type, micro_grid_id, community_id, street_id, district_id, lon, lat, interval_s, installed_at, credential_version, changed_at'
const CAMERA_COLUMNS = 'id, kind, micro_grid_id, community_id, street_id, district_id, lon, lat, rtsp_url, codec, width, height, fps, bitrate_kbps, gop'

const refuse = (status: Refusal['status'], code: Refusal['code'], message: string): Refusal => ({ ok: false, status, code, message })
const ID_RULE = "1 to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"

/**
 * The device or camera a change is about, as the registry holds it now; or
 * the refusal: an id the registry cannot hold, an add of one that exists,
 * any other change of one that does not.
 */
async function subjectOf<T>(what: 'device' | 'camera', change: { op: string; id: string }, get: (id: string) => Promise<T | undefined>): Promise<{ current: T | undefined } | Refusal> {
  if (!ID_PATTERN.test(change.id)) return refuse(400, 'BAD_REQUEST', `${what} id ${JSON.stringify(change.id)}: ${ID_RULE}`)
  const current = await get(change.id)
  if (change.op === 'add' && current) return refuse(409, what === 'device' ? 'DEVICE_EXISTS' : 'CAMERA_EXISTS', `${what} ${change.id} exists already; change it with update or move`)
  if (change.op !== 'add' && !current) return refuse(404, what === 'device' ? 'DEVICE_NOT_FOUND' : 'CAMERA_NOT_FOUND', `no ${what} ${change.id}`)
  return { current }
}

/** A registry table and the log of its changes. */
interface Ledger {
  table: 'devices' | 'cameras'
  log: 'device_changes' | 'camera_changes'
  logId: 'device_id' | 'camera_id'
}
const DEVICES: Ledger = { table: 'devices', log: 'device_changes', logId: 'device_id' }
const CAMERAS: Ledger = { table: 'cameras', log: 'camera_changes', logId: 'camera_id' }

export class Provisioner {
  readonly #client: ClickHouseClient
  readonly #toleranceKm: number
  #micros: Promise<MicroGrids> | undefined
  /** One change at a time: two at once on one device would each delete the other's row. */
  #queue: Promise<unknown> = Promise.resolve()

  constructor(o: { client: ClickHouseClient; toleranceKm?: number }) {
    this.#client = o.client
    this.#toleranceKm = o.toleranceKm ?? 0.05
  }

  /** Applies a change to a device, stored before it resolves; a refusal says why, and changes nothing. */
  apply(change: DeviceChange, actor: string, reason = ''): Promise<ProvisionResult> {
    return this.#serial(() => this.#apply(change, actor, reason))
  }

  /** The device as the registry holds it now; undefined when there is none (or it was decommissioned). */
  async get(id: string): Promise<DeviceRecord | undefined> {
    const rs = await this.#client.query({
      query: `SELECT ${COLUMNS.replace('installed_at', 'toUnixTimestamp64Milli(installed_at) AS installed_at').replace('changed_at', 'toUnixTimestamp64Milli(changed_at) AS changed_at')}
              FROM devices WHERE id = {id:String} ORDER BY changed_at DESC LIMIT 1`,
      query_params: { id }, format: 'JSONCompactEachRow',
    })
    const [row] = await rs.json<[string, DeviceType, number, number, number, number, number, number, number, number | string, number]>()
    if (!row) return undefined
    const [, type, micro, community, street, district, lon, lat, interval, installed, version] = row
    return { id, type, microGridId: Number(micro), communityId: Number(community), streetId: Number(street), districtId: Number(district), lon, lat, intervalS: Number(interval), installedAt: Number(installed), credentialVersion: Number(version) }
  }

  async #apply(change: DeviceChange, actor: string, reason: string): Promise<ProvisionResult> {
    const found = await subjectOf('device', change, (id) => this.get(id))
    if ('ok' in found) return found
    const { current } = found
    let next: DeviceRecord
    switch (change.op) {
      case 'add': {
        const spec = DEVICE_TYPE_BY_NAME.get(change.type as DeviceType)
        if (!spec) return refuse(400, 'BAD_REQUEST', `type ${JSON.stringify(change.type)} is not a device type`)
        const where = await this.#locate(change.at)
        if (typeof where === 'string') return refuse(400, 'BAD_REQUEST', where)
        next = { id: change.id, type: spec.type, ...where, intervalS: change.intervalS ?? spec.intervalS, installedAt: change.installedAt ?? 0, credentialVersion: 0 }
        break
      }
      case 'update': {
        const was = current as DeviceRecord
        const spec = change.type === undefined ? undefined : DEVICE_TYPE_BY_NAME.get(change.type as DeviceType)
        if (change.type !== undefined && !spec) return refuse(400, 'BAD_REQUEST', `type ${JSON.stringify(change.type)} is not a device type`)
        next = { ...was, type: spec?.type ?? was.type, intervalS: change.intervalS ?? was.intervalS }
        break
      }
      case 'move': {
        const where = await this.#locate(change.at)
        if (typeof where === 'string') return refuse(400, 'BAD_REQUEST', where)
        next = { ...(current as DeviceRecord), ...where }
        break
      }
      case 'rotate':
        next = { ...(current as DeviceRecord), credentialVersion: (current as DeviceRecord).credentialVersion + 1 }
        break
      case 'decommission':
        next = current as DeviceRecord
        break
    }
    // What the device's row and its log entry both carry.
    const placed = {
      type: next.type, micro_grid_id: next.microGridId, community_id: next.communityId, street_id: next.streetId, district_id: next.districtId,
      lon: next.lon, lat: next.lat, interval_s: next.intervalS, credential_version: next.credentialVersion,
    }
    const at = await this.#record(DEVICES, change.op, next.id, change.op === 'decommission' ? undefined : { id: next.id, ...placed, installed_at: next.installedAt }, { ...placed, actor, reason })
    log.info({ op: change.op, device: next.id, actor, reason }, 'device provisioned')
    return { ok: true, op: change.op, device: next, at }
  }

  /** Applies a change to a camera, stored before it resolves; a refusal says why, and changes nothing. */
  applyCamera(change: CameraChange, actor: string, reason = ''): Promise<CameraProvisionResult> {
    return this.#serial(() => this.#applyCamera(change, actor, reason))
  }

  /** The camera as the registry holds it now; undefined when there is none (or it was decommissioned). */
  async getCamera(id: string): Promise<Camera | undefined> {
    const rs = await this.#client.query({ query: `SELECT ${CAMERA_COLUMNS} FROM cameras WHERE id = {id:String} ORDER BY changed_at DESC LIMIT 1`, query_params: { id }, format: 'JSONCompactEachRow' })
    const [row] = await rs.json<[string, CameraKind, number, number, number, number, number, number, string, 'h264' | 'h265', number, number, number, number, number]>()
    if (!row) return undefined
    const [, kind, micro, community, street, district, lon, lat, rtspUrl, codec, width, height, fps, bitrate, gop] = row
    return { id, kind, microGridId: Number(micro), communityId: Number(community), streetId: Number(street), districtId: Number(district), lon, lat, rtspUrl,
      profile: { codec, width: Number(width), height: Number(height), fps: Number(fps), bitrateKbps: Number(bitrate), gop: Number(gop) } }
  }

  async #applyCamera(change: CameraChange, actor: string, reason: string): Promise<CameraProvisionResult> {
    const found = await subjectOf('camera', change, (id) => this.getCamera(id))
    if ('ok' in found) return found
    const { current } = found
    let next: Camera
    switch (change.op) {
      case 'add': {
        const where = await this.#locate(change.at)
        if (typeof where === 'string') return refuse(400, 'BAD_REQUEST', where)
        next = { id: change.id, kind: change.kind as CameraKind, ...where, rtspUrl: change.rtspUrl, profile: { ...DEFAULT_PROFILE, ...change.profile } }
        break
      }
      case 'update': {
        const was = current as Camera
        next = { ...was, kind: (change.kind ?? was.kind) as CameraKind, rtspUrl: change.rtspUrl ?? was.rtspUrl, profile: { ...was.profile, ...change.profile } }
        break
      }
      case 'move': {
        const where = await this.#locate(change.at)
        if (typeof where === 'string') return refuse(400, 'BAD_REQUEST', where)
        next = { ...(current as Camera), ...where }
        break
      }
      case 'decommission':
        next = current as Camera
        break
    }
    // A camera is taken out as it is, whatever today's checks say of what was stored long ago.
    const problem = change.op === 'decommission' ? undefined : cameraProblem(next)
    if (problem) return refuse(400, 'BAD_REQUEST', `camera ${next.id}: ${problem}`)
    const placed = { kind: next.kind, micro_grid_id: next.microGridId, community_id: next.communityId, street_id: next.streetId, district_id: next.districtId, lon: next.lon, lat: next.lat, rtsp_url: next.rtspUrl }
    const p = next.profile
    const at = await this.#record(CAMERAS, change.op, next.id, change.op === 'decommission' ? undefined : {
      id: next.id, ...placed, codec: p.codec, width: p.width, height: p.height, fps: p.fps, bitrate_kbps: p.bitrateKbps, gop: p.gop,
    }, { ...placed, actor, reason })
    log.info({ op: change.op, camera: next.id, actor, reason }, 'camera provisioned')
    return { ok: true, op: change.op, camera: next, at }
  }

  /**
   * One change at a time, of either kind, in this process: two at once on
   * one subject would each delete the other's row. Changes from two
   * processes at once (the API and the command line) are not ordered.
   */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn)
    this.#queue = run.catch(() => undefined)
    return run
  }

  /**
   * Writes a change: the subject's new row (undefined: it is decommissioned)
   * with the change's time, its older rows deleted, then the log entry.
   * Were the process to die between the two, the followers would learn of
   * the change at their next start, when they read the table again.
   */
  async #record(ledger: Ledger, op: string, id: string, row: Record<string, unknown> | undefined, logRow: Record<string, unknown>): Promise<number> {
    const at = await this.#storeNow()
    if (!row) {
      await this.#client.command({ query: `DELETE FROM ${ledger.table} WHERE id = {id:String}`, query_params: { id } })
    } else {
      await this.#client.insert({ table: ledger.table, format: 'JSONEachRow', values: [{ ...row, changed_at: at }] })
      await this.#client.command({ query: `DELETE FROM ${ledger.table} WHERE id = {id:String} AND changed_at < fromUnixTimestamp64Milli({at:Int64})`, query_params: { id, at } })
    }
    await this.#client.insert({ table: ledger.log, format: 'JSONEachRow', values: [{ at, [ledger.logId]: id, op, ...logRow }] })
    return at
  }

  /**
   * The store's clock in epoch ms, one millisecond past the last change of
   * either log: each change is later than every one before it, so the twin,
   * which follows the later of the two logs' positions, sees every change.
   */
  async #storeNow(): Promise<number> {
    const rs = await this.#client.query({
      query: `SELECT toUnixTimestamp64Milli(greatest(now64(3), (SELECT max(at) FROM device_changes) + toIntervalMillisecond(1), (SELECT max(at) FROM camera_changes) + toIntervalMillisecond(1))) AS t`,
      format: 'JSONEachRow',
    })
    const [row] = await rs.json<{ t: number | string }>()
    return Number(row?.t ?? Date.now())
  }

  /** Where a device stands (registry/locate.ts), or why not. */
  async #locate(at: Location): Promise<Place | string> {
    return (await this.#microGrids()).place(at)
  }

  /** The city's micro-grids, read once (a city is replaced only with citytwin stopped). */
  #microGrids(): Promise<MicroGrids> {
    this.#micros ??= (async () => {
      const rs = await this.#client.query({ query: "SELECT id, community_id, street_id, district_id, ring, centroid_lon, centroid_lat FROM grids WHERE level = 'micro'", format: 'JSONCompactEachRow' })
      const micros = (await rs.json<[number, number, number, number, LonLat[], number, number]>()).map(([id, c, s, d, ring, lon, lat]): MicroGrid => ({ id: Number(id), communityId: Number(c), streetId: Number(s), districtId: Number(d), ring, centroid: [lon, lat] }))
      if (micros.length === 0) throw new CitytwinError('DEVICE_NOT_FOUND', 'the store holds no city: generate or import one first')
      return new MicroGrids(micros, this.#toleranceKm)
    })()
    this.#micros.catch(() => { this.#micros = undefined })
    return this.#micros
  }
}

/** Why a camera cannot be as it is, or undefined when it can. */
function cameraProblem(c: Camera): string | undefined {
  if (!(CAMERA_KINDS as readonly string[]).includes(c.kind)) return `kind ${JSON.stringify(c.kind)}, not one of ${CAMERA_KINDS.join(', ')}`
  return rtspUrlProblem(c.rtspUrl) ?? profileProblem(c.profile)
}
