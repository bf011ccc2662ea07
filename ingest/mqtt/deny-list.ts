// Devices whose access is revoked at runtime: a stolen or cloned device, a
// device that floods, one taken out of service. Its token is derived from
// the deployment secret, so it cannot be changed alone; instead the store
// keeps a list of denied devices (device_denials, the latest row per device
// in force), a gateway process reads it every mqtt.denyListRefreshMs,
// refuses a denied device's CONNECT (CONNACK 5, not authorized) and ends the
// connections it already has. Given back, the device connects again at its
// next try. No restart. With --workers the primary reads it instead and
// hands it to every worker before any connection ends (denial-sync.ts).
import type { ClickHouseClient } from '@clickhouse/client'
import type { Component, ComponentStats, Health } from '../../lib/component.ts'
import { Refresher } from '../../lib/refresher.ts'
import { logger } from '../../lib/log.ts'
import { gauge } from '../../lib/metrics.ts'

const log = logger('mqtt-deny-list')
const deniedGauge = gauge('citytwin_mqtt_denied_devices', 'Devices whose access is revoked (device_denials), as this gateway process last read them')

export interface Denial {
  deviceId: string
  reason: string
  actor: string
  at: number
}

/** The devices denied now, with who denied them, when and why. */
export async function listDenials(client: ClickHouseClient): Promise<Denial[]> {
  const rs = await client.query({
    query: `SELECT device_id, argMax(reason, at), argMax(actor, at), toUnixTimestamp64Milli(max(at)) FROM device_denials
            GROUP BY device_id HAVING argMax(denied, at) = 1 ORDER BY device_id`,
    format: 'JSONCompactEachRow',
  })
  return (await rs.json<[string, string, string, number | string]>()).map(([deviceId, reason, actor, at]) => ({ deviceId, reason, actor, at: Number(at) }))
}

/**
 * Denies a device (`denied`) or gives it back; takes effect in every gateway
 * within its refresh. Stamped with the store's clock, not the caller's: a
 * CLI on a host whose clock is behind must not lose its "allow" to an
 * earlier "deny". `at` only for tests.
 */
export async function setDenial(client: ClickHouseClient, change: { deviceId: string; denied: boolean; reason: string; actor: string; at?: number }): Promise<void> {
  await client.command({
    query: `INSERT INTO device_denials (device_id, denied, reason, actor, at)
            SELECT {id:String}, {denied:UInt8}, {reason:String}, {actor:String}, ${change.at === undefined ? 'now64(3)' : 'fromUnixTimestamp64Milli({at:Int64})'}`,
    query_params: { id: change.deviceId, denied: change.denied ? 1 : 0, reason: change.reason, actor: change.actor, ...(change.at === undefined ? {} : { at: change.at }) },
  })
}

export interface DenyListOptions {
  client: ClickHouseClient
  refreshMs: number
  /** Devices denied since the last read: their connections are to end. */
  onDenied: (deviceIds: readonly string[]) => void
  /** How long the first read may keep failing before the start fails (default 30 s). */
  startTimeoutMs?: number
}

/** This process's copy of the list, read at start and every `refreshMs`. */
export class DenyList implements Component {
  readonly name = 'mqtt-deny-list'
  readonly #o: Required<DenyListOptions>
  #denied: ReadonlySet<string> = new Set()
  readonly #refresher: Refresher
  #reads = 0

  constructor(o: DenyListOptions) {
    this.#o = { startTimeoutMs: 30_000, ...o }
    this.#refresher = new Refresher(() => this.#read(), (err) => log.warn({ err }, 'device deny list not read; the last one stays in force'))
  }

  has(deviceId: string): boolean {
    return this.#denied.has(deviceId)
  }

  async start(): Promise<void> {
    // Read before the gateway listens: a denied device is refused from the first CONNECT. A store briefly out
    // of reach (a worker starting while its primary is busy) is tried again for a while before giving up.
    const failed = await this.#refresher.runUntilRead(this.#o.startTimeoutMs)
    if (failed !== undefined) throw new Error(`cannot read the device deny list: ${failed}`)
    this.#refresher.every(this.#o.refreshMs)
  }

  /** Reads the list again. A failed read keeps the last one (a store outage must not let denied devices in). */
  refresh(): Promise<void> {
    return this.#refresher.run()
  }

  async #read(): Promise<void> {
    const next = new Set((await listDenials(this.#o.client)).map((d) => d.deviceId))
    const added = [...next].filter((id) => !this.#denied.has(id))
    this.#denied = next
    this.#reads++
    deniedGauge.set(next.size)
    if (added.length > 0) {
      log.info({ devices: added.length, first: added[0] }, 'devices denied: ending their connections')
      this.#o.onDenied(added)
    }
  }

  async stop(): Promise<void> {
    await this.#refresher.stop()
  }

  async health(): Promise<Health> {
    const error = this.#refresher.lastError
    return error === undefined ? { ok: true } : { ok: true, detail: `the list could not be read lately (${error}); the last one read is in force` }
  }

  stats(): ComponentStats {
    return { denied: this.#denied.size, reads: this.#reads }
  }
}
