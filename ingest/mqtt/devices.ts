// The device registry the gateway authenticates and validates against,
// loaded once from the store's `devices` table. Every gateway worker holds
// all 219,300 devices, so they are kept column-wise in typed arrays behind an
// id index in flat arrays (id-index.ts; about 15 MB in all, where one object
// per device took about 55 MB of heap and a Map of the ids alone 12 MB); a
// device's record is built when it connects and kept with its session.
import type { ClickHouseClient } from '@clickhouse/client'
import { DEVICE_TYPES, type DeviceType } from '../../registry/device-types.ts'
import { IdIndex } from './id-index.ts'
import type { DeviceInfo } from './telemetry.ts'

/** What the gateway needs of a registry: the record of a device id. */
export interface DeviceLookup {
  get(id: string): DeviceInfo | undefined
  readonly size: number
}

const TYPE_NAMES: readonly DeviceType[] = DEVICE_TYPES.map((t) => t.type)
const TYPE_INDEX = new Map(TYPE_NAMES.map((t, i) => [t, i]))

export class DeviceRegistry implements DeviceLookup {
  readonly #ids = new IdIndex()
  #type = new Uint8Array(1024)
  #grids = new Uint32Array(1024 * 3) // micro-grid, community, street
  #district = new Uint16Array(1024)
  #lonLat = new Float64Array(1024 * 2)
  #version = new Uint32Array(1024)

  get size(): number {
    return this.#ids.size
  }

  add(d: DeviceInfo): void {
    const type = TYPE_INDEX.get(d.type)
    if (type === undefined) throw new Error(`device ${d.id} has an unknown type ${d.type}`)
    // A decommissioned device added again gets a new row; rows are never reused.
    const i = this.#ids.add(d.id)
    if (i >= this.#type.length) this.#grow()
    this.#type[i] = type
    this.#grids.set([d.microGridId, d.communityId, d.streetId], i * 3)
    this.#district[i] = d.districtId
    this.#lonLat.set([d.lon, d.lat], i * 2)
    this.#version[i] = d.credentialVersion ?? 0
  }

  /** Takes a decommissioned device out: it is unknown from now on (its row is not reused). */
  remove(id: string): boolean {
    return this.#ids.remove(id)
  }

  get(id: string): DeviceInfo | undefined {
    const i = this.#ids.find(id)
    if (i < 0) return undefined
    return {
      id, type: TYPE_NAMES[this.#type[i] ?? 0] as DeviceType,
      microGridId: this.#grids[i * 3] ?? 0, communityId: this.#grids[i * 3 + 1] ?? 0, streetId: this.#grids[i * 3 + 2] ?? 0,
      districtId: this.#district[i] ?? 0, lon: this.#lonLat[i * 2] ?? 0, lat: this.#lonLat[i * 2 + 1] ?? 0, credentialVersion: this.#version[i] ?? 0,
    }
  }

  *values(): IterableIterator<DeviceInfo> {
    for (const row of this.#ids.liveRows()) yield this.get(this.#ids.idOf(row)) as DeviceInfo
  }

  #grow(): void {
    const n = this.#type.length * 2
    const grow = <T extends Uint8Array | Uint16Array | Uint32Array | Float64Array>(a: T, make: (n: number) => T, width: number): T => {
      const b = make(n * width)
      b.set(a)
      return b
    }
    this.#type = grow(this.#type, (k) => new Uint8Array(k), 1)
    this.#grids = grow(this.#grids, (k) => new Uint32Array(k), 3)
    this.#district = grow(this.#district, (k) => new Uint16Array(k), 1)
    this.#lonLat = grow(this.#lonLat, (k) => new Float64Array(k), 2)
    this.#version = grow(this.#version, (k) => new Uint32Array(k), 1)
  }
}

/** Reads every device from the store, row by row (the whole result is never held at once). */
export async function loadDevices(client: ClickHouseClient): Promise<DeviceRegistry> {
  const rs = await client.query({
    // Oldest change first: a device changed while an earlier row of it is still being deleted ends with its latest.
    query: 'SELECT id, type, micro_grid_id, community_id, street_id, district_id, lon, lat, credential_version FROM devices ORDER BY changed_at',
    format: 'JSONCompactEachRow',
  })
  const out = new DeviceRegistry()
  for await (const rows of rs.stream<[string, DeviceType, number, number, number, number, number, number, number]>()) {
    for (const row of rows) {
      const [id, type, micro, community, street, district, lon, lat, version] = row.json()
      out.add({ id, type, microGridId: Number(micro), communityId: Number(community), streetId: Number(street), districtId: Number(district), lon, lat, credentialVersion: Number(version) })
    }
  }
  return out
}

/** The topics a device may publish to, and the filter it may subscribe to. */
export const deviceTopics = (id: string) => ({
  telemetry: `devices/${id}/telemetry`,
  status: `devices/${id}/status`,
  events: `devices/${id}/events`,
  commands: `devices/${id}/commands/#`,
})

export type PublishKind = 'telemetry' | 'status' | 'events'

/**
 * Which of its own topics `devices/{id}/{kind}` a PUBLISH goes to, or
 * undefined when it is not one of them. Runs for every message, so it
 * compares in place instead of building the three topic strings.
 */
export function ownPublishKind(topic: string, id: string): PublishKind | undefined {
  if (!topic.startsWith('devices/') || !topic.startsWith(id, 8) || topic.charCodeAt(8 + id.length) !== 0x2f) return undefined
  const kind = topic.slice(9 + id.length)
  return kind === 'telemetry' || kind === 'status' || kind === 'events' ? kind : undefined
}
