// A gateway process follows the devices provisioned while it runs
// (registry/provision.ts): it reads the log of changes (`device_changes`)
// every mqtt.denyListRefreshMs and applies each to its own copy of the
// registry. An added device connects at once; a changed, moved or rotated
// one loses its connection and comes back as it is now (its grids, its new
// token); a decommissioned one is unknown from then on.
//
// In a cluster the workers' connections end only once every worker has the
// change (registry-sync.ts): a worker's own reads then only apply, and the
// primary, which reads the log too, hands each change to every worker and
// then has them end the connections.
import type { ClickHouseClient } from '@clickhouse/client'
import type { Component, ComponentStats, Health } from '../../lib/component.ts'
import { Refresher } from '../../lib/refresher.ts'
import { logger } from '../../lib/log.ts'
import type { DeviceType } from '../../registry/device-types.ts'
import type { DeviceRegistry } from './devices.ts'

const log = logger('mqtt-registry-watch')

export interface RegistryWatchOptions {
  client: ClickHouseClient
  registry: DeviceRegistry
  /** The log's position when the registry was loaded (registry/provision.ts deviceLogPosition). */
  since: number
  refreshMs: number
  /**
   * Devices whose connections are to end: changed (they come back as they
   * are now) or decommissioned. Unset in a cluster's worker, where the
   * primary says when (registry-sync.ts).
   */
  onChanged?: (deviceIds: readonly string[]) => void
}

/** A row of the device log: at (ms), device id, op, type, micro-grid, community, street, district, lon, lat, credential version. */
export type ChangeRow = [number | string, string, string, DeviceType, number, number, number, number, number, number, number]

/** The device log's rows after `since` (ms), oldest first. */
export async function readDeviceChanges(client: ClickHouseClient, since: number): Promise<ChangeRow[]> {
  const rs = await client.query({
    query: `SELECT toUnixTimestamp64Milli(at), device_id, op, type, micro_grid_id, community_id, street_id, district_id, lon, lat, credential_version
            FROM device_changes WHERE at > fromUnixTimestamp64Milli({since:Int64}) ORDER BY at`,
    query_params: { since }, format: 'JSONCompactEachRow',
  })
  return rs.json<ChangeRow>()
}

/** The devices of `rows` whose connections a change ends: all but the added. */
export function endedBy(rows: readonly ChangeRow[]): string[] {
  return rows.filter((r) => r[2] !== 'add').map((r) => r[1])
}

/**
 * Reads the device log from a position every `refreshMs`, one read at a
 * time; a failed read leaves what was read in force and is tried again at
 * the next. What the new rows do is the subclass's (`take`), and so is
 * moving `since` past them.
 */
export abstract class DeviceLogFollower implements Component {
  abstract readonly name: string
  readonly #client: ClickHouseClient
  readonly #refreshMs: number
  readonly #refresher: Refresher
  /** The newest change taken (ms). */
  protected since: number

  constructor(client: ClickHouseClient, since: number, refreshMs: number) {
    this.#client = client
    this.since = since
    this.#refreshMs = refreshMs
    this.#refresher = new Refresher(async () => this.take(await readDeviceChanges(this.#client, this.since)), (err) => log.warn({ err }, 'device changes not read; tried again at the next refresh'))
  }

  /** What the changes after `since` do, oldest first. */
  protected abstract take(rows: ChangeRow[]): Promise<void> | void

  /** Reads once (what changed since the position it was given), then every refreshMs. */
  async start(): Promise<void> {
    await this.#refresher.run()
    this.#refresher.every(this.#refreshMs)
  }

  /** Reads the changes since the last read now, or joins the read under way. */
  refresh(): Promise<void> {
    return this.#refresher.run()
  }

  async stop(): Promise<void> {
    await this.#refresher.stop()
  }

  async health(): Promise<Health> {
    const error = this.#refresher.lastError
    return error === undefined ? { ok: true } : { ok: true, detail: `device changes could not be read lately (${error}); the registry as last read is in force` }
  }

  abstract stats(): ComponentStats
}

export class RegistryWatch extends DeviceLogFollower {
  readonly name = 'mqtt-registry-watch'
  readonly #o: RegistryWatchOptions
  #counts = { applied: 0, added: 0, changed: 0, decommissioned: 0 }

  constructor(o: RegistryWatchOptions) {
    super(o.client, o.since, o.refreshMs)
    this.#o = o
  }

  protected take(rows: ChangeRow[]): void {
    const ended = this.apply(rows)
    if (ended.length > 0 && this.#o.onChanged) {
      log.info({ devices: ended.length, first: ended[0] }, 'devices changed or decommissioned: ending their connections')
      this.#o.onChanged(ended)
    }
  }

  /**
   * Applies the log's rows (oldest first) that are newer than what this
   * copy has, and returns the devices whose connections they end. A row
   * already applied (read here and handed over by the primary as well) is
   * skipped, so an older change never undoes a newer one.
   */
  apply(rows: readonly ChangeRow[]): string[] {
    const from = this.since
    const ended: string[] = []
    for (const [at, id, op, type, micro, community, street, district, lon, lat, version] of rows) {
      if (Number(at) <= from) continue
      if (op === 'decommission') {
        this.#o.registry.remove(id)
        this.#counts.decommissioned++
        ended.push(id)
      } else {
        this.#o.registry.add({ id, type, microGridId: Number(micro), communityId: Number(community), streetId: Number(street), districtId: Number(district), lon, lat, credentialVersion: Number(version) })
        if (op === 'add') this.#counts.added++
        else {
          this.#counts.changed++
          ended.push(id)
        }
      }
      this.#counts.applied++
      this.since = Math.max(this.since, Number(at))
    }
    return ended
  }

  stats(): ComponentStats {
    return { ...this.#counts, since: this.since }
  }
}
