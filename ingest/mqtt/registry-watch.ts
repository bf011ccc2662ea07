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
 * How far back of its position each read of the device log looks again. A
 * change is stamped with the store's clock before it is written, so one
 * made at the same moment through another process (the API and a CLI
 * command) can land after a later-stamped one that was read already; the
 * overlap reads it still, and the rows taken in it are remembered so that
 * none is taken twice.
 */
export const LOG_OVERLAP_MS = 10_000

const rowKey = (r: ChangeRow): string => `${r[0]}\u0000${r[1]}\u0000${r[2]}`

/**
 * Reads the device log from a position every `refreshMs`, one read at a
 * time; a failed read leaves what was read in force and is tried again at
 * the next. Each row is handed to `take` once, oldest first, also one that
 * landed late (LOG_OVERLAP_MS).
 */
export abstract class DeviceLogFollower implements Component {
  abstract readonly name: string
  readonly #client: ClickHouseClient
  readonly #refreshMs: number
  readonly #refresher: Refresher
  /** The newest change read (ms). */
  protected since: number
  /** Rows taken within LOG_OVERLAP_MS of `since`, by key, with their time. */
  readonly #taken = new Map<string, number>()
  /** Set by `prime`: the first read only remembers the rows up to the position it was given, without taking them. */
  #priming: number | undefined

  constructor(client: ClickHouseClient, since: number, refreshMs: number) {
    this.#client = client
    this.since = since
    this.#refreshMs = refreshMs
    this.#refresher = new Refresher(() => this.#read(), (err) => log.warn({ err }, 'device changes not read; tried again at the next refresh'))
  }

  /** What the changes read do, oldest first; each comes once. */
  protected abstract take(rows: ChangeRow[]): Promise<void> | void

  /**
   * The rows up to the position given are already in force wherever this
   * follower acts (the registries were loaded after it): not taken again.
   */
  protected prime(): void {
    this.#priming = this.since
  }

  async #read(): Promise<void> {
    const rows = await readDeviceChanges(this.#client, this.since - LOG_OVERLAP_MS)
    const fresh: ChangeRow[] = []
    for (const r of rows) {
      const key = rowKey(r)
      if (this.#taken.has(key)) continue
      this.#taken.set(key, Number(r[0]))
      if (this.#priming === undefined || Number(r[0]) > this.#priming) fresh.push(r)
    }
    this.#priming = undefined
    for (const r of fresh) this.since = Math.max(this.since, Number(r[0]))
    for (const [key, at] of this.#taken) if (at <= this.since - LOG_OVERLAP_MS) this.#taken.delete(key)
    if (fresh.length > 0) await this.take(fresh)
  }

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
  /** The time of the latest change applied to each device changed while this process runs. */
  readonly #appliedAt = new Map<string, number>()

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
   * copy has of their device, and returns the devices whose connections
   * they end. A row already applied (read here and handed over by the
   * primary as well) is skipped, so an older change never undoes a newer
   * one. Rows from before this process loaded its registry (the read's
   * overlap) are applied again, to the same result.
   */
  apply(rows: readonly ChangeRow[]): string[] {
    const ended: string[] = []
    for (const [at, id, op, type, micro, community, street, district, lon, lat, version] of rows) {
      // Per device: a change that landed late for another device is applied; an older one of this device is not.
      if (Number(at) <= (this.#appliedAt.get(id) ?? -Infinity)) continue
      this.#appliedAt.set(id, Number(at))
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
    }
    return ended
  }

  stats(): ComponentStats {
    return { ...this.#counts, since: this.since }
  }
}
