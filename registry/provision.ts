// Devices provisioned while the system runs: added, changed, moved,
// decommissioned, their credentials rotated. Each change is written to the
// `devices` table (the device's new row first, then its old rows deleted,
// so it is never missing) and then to `device_changes`, the log every
// gateway process follows within mqtt.denyListRefreshMs
// (ingest/mqtt/registry-watch.ts). Both carry the store's clock.
import type { ClickHouseClient } from '@clickhouse/client'
import { CitytwinError } from '../lib/errors.ts'
import { logger } from '../lib/log.ts'
import type { Device, LonLat } from './city.ts'
import { DEVICE_TYPE_BY_NAME, type DeviceType } from './device-types.ts'
import { ID_PATTERN } from './import.ts'
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

/** Where the device log stands (epoch ms of its last change; 0 when nothing was ever provisioned): followers read it before the registry, so nothing falls between. */
export async function deviceLogPosition(client: ClickHouseClient): Promise<number> {
  const rs = await client.query({ query: 'SELECT toUnixTimestamp64Milli(max(at)) AS at FROM device_changes', format: 'JSONEachRow' })
  return Number((await rs.json<{ at: number | string | null }>())[0]?.at ?? 0)
}

export type ProvisionResult =
  | { ok: true; op: DeviceChange['op']; device: DeviceRecord; at: number }
  | { ok: false; status: 400 | 404 | 409; code: 'DEVICE_NOT_FOUND' | 'DEVICE_EXISTS' | 'BAD_REQUEST'; message: string }

const COLUMNS = 'id, type, micro_grid_id, community_id, street_id, district_id, lon, lat, interval_s, installed_at, credential_version, changed_at'

const refuse = (status: 400 | 404 | 409, code: 'DEVICE_NOT_FOUND' | 'DEVICE_EXISTS' | 'BAD_REQUEST', message: string): ProvisionResult => ({ ok: false, status, code, message })

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

  /** Applies a change, stored before it resolves; a refusal says why, and changes nothing. */
  apply(change: DeviceChange, actor: string, reason = ''): Promise<ProvisionResult> {
    const run = this.#queue.then(() => this.#apply(change, actor, reason))
    this.#queue = run.catch(() => undefined)
    return run
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
    if (!ID_PATTERN.test(change.id)) return refuse(400, 'BAD_REQUEST', `device id ${JSON.stringify(change.id)}: 1 to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit`)
    const current = await this.get(change.id)
    if (change.op === 'add' && current) return refuse(409, 'DEVICE_EXISTS', `device ${change.id} exists already; change it with update or move`)
    if (change.op !== 'add' && !current) return refuse(404, 'DEVICE_NOT_FOUND', `no device ${change.id}`)
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
    const at = await this.#storeNow()
    if (change.op === 'decommission') {
      await this.#client.command({ query: 'DELETE FROM devices WHERE id = {id:String}', query_params: { id: next.id } })
    } else {
      await this.#client.insert({
        table: 'devices', format: 'JSONEachRow',
        values: [{ id: next.id, type: next.type, micro_grid_id: next.microGridId, community_id: next.communityId, street_id: next.streetId, district_id: next.districtId,
          lon: next.lon, lat: next.lat, interval_s: next.intervalS, installed_at: next.installedAt, credential_version: next.credentialVersion, changed_at: at }],
      })
      await this.#client.command({ query: 'DELETE FROM devices WHERE id = {id:String} AND changed_at < fromUnixTimestamp64Milli({at:Int64})', query_params: { id: next.id, at } })
    }
    // Then the log the gateways follow. Were the process to die between the two, the gateways would
    // learn of the change at their next start, when they read the devices table again.
    await this.#client.insert({
      table: 'device_changes', format: 'JSONEachRow',
      values: [{ at, device_id: next.id, op: change.op, type: next.type, micro_grid_id: next.microGridId, community_id: next.communityId, street_id: next.streetId, district_id: next.districtId,
        lon: next.lon, lat: next.lat, interval_s: next.intervalS, credential_version: next.credentialVersion, actor, reason }],
    })
    log.info({ op: change.op, device: next.id, actor, reason }, 'device provisioned')
    return { ok: true, op: change.op, device: next, at }
  }

  /** The store's clock in epoch ms, one millisecond past the last change (so each change is later than the one before). */
  async #storeNow(): Promise<number> {
    const rs = await this.#client.query({ query: "SELECT toUnixTimestamp64Milli(greatest(now64(3), (SELECT max(at) FROM device_changes) + toIntervalMillisecond(1))) AS t", format: 'JSONEachRow' })
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
