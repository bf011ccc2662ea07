// The twin's checkpoint: the latest value of every device's metrics and its
// latest connectivity, written by the twin itself every
// twin.checkpointIntervalMs together with the bus positions it has applied
// up to (lib/bus/position.ts). A twin loads the checkpoint and then what the
// store holds above those positions (load.ts), so a restart knows every
// device's state without scanning the readings.
//
// Until migration 8 two materialized views kept these tables: every insert
// into readings and events wrote a part into each, and the store merged
// each table's whole content again with every small part (device_latest's
// largest part had been rewritten 587 times in a 7-minute run of 52,632
// devices). Written by the twin once a minute, they cost a few inserts a
// minute whatever the load.
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { ClickHouseClient } from '@clickhouse/client'
import type { Element } from '../../lib/bus/elements.ts'
import { cover, NO_POSITIONS, type Positions } from '../../lib/bus/position.ts'
import { BodySlices, insertRows, sendEncoded } from '../../store/insert-rows.ts'
import type { Twin } from './twin.ts'

/** What changed since the last checkpoint, and how far along the bus the twin is. */
export interface CheckpointDelta {
  /** Devices with a newer reading. */
  readings: Set<string>
  /** Devices with newer connectivity: the latest event's time and state. */
  connectivity: Map<string, { ts: number; connected: boolean }>
  /** Per stream: the highest position applied. */
  positions: Positions
}

const emptyDelta = (positions: Positions): CheckpointDelta => ({ readings: new Set(), connectivity: new Map(), positions: { ...positions } })

/** Notes what the twin applies, for the next checkpoint. */
export class CheckpointTracker {
  #delta: CheckpointDelta = emptyDelta(NO_POSITIONS)

  /** Positions applied so far. */
  get positions(): Positions {
    return { ...this.#delta.positions }
  }

  /** Devices with changes not yet in a checkpoint. */
  get pending(): number {
    return this.#delta.readings.size + this.#delta.connectivity.size
  }

  note(batch: readonly Element[]): void {
    const d = this.#delta
    for (const e of batch) {
      if (e.kind === 'reading') d.readings.add(e.deviceId)
      else if (e.kind === 'connectivity') {
        const prev = d.connectivity.get(e.deviceId)
        // As the twin does: the later event wins, and of two at once the last applied.
        if (!prev || e.ts >= prev.ts) d.connectivity.set(e.deviceId, { ts: e.ts, connected: e.state === 'connected' })
      }
    }
    cover(d.positions, batch)
  }

  /** Positions at least these (what a load from the store covered). */
  advance(positions: Positions): void {
    for (const s of Object.keys(positions) as (keyof Positions)[]) this.#delta.positions[s] = Math.max(this.#delta.positions[s], positions[s])
  }

  /** What a checkpoint writes now; the tracker starts afresh (from the same positions). */
  take(): CheckpointDelta {
    const taken = this.#delta
    this.#delta = emptyDelta(taken.positions)
    return taken
  }

  /** A checkpoint that failed: its changes go into the next one. */
  giveBack(taken: CheckpointDelta): void {
    const d = this.#delta
    for (const id of taken.readings) d.readings.add(id)
    for (const [id, c] of taken.connectivity) {
      const now = d.connectivity.get(id)
      if (!now || c.ts > now.ts) d.connectivity.set(id, c)
    }
  }
}

export interface CheckpointRows {
  /** device_latest (device_id, metric, ts, value) as a JSONCompactEachRow body (empty for no rows), and how many rows it holds. */
  latest: { body: Buffer; rows: number }
  /** device_connectivity: device_id, ts, connected. */
  connectivity: [string, number, number][]
}

/** Devices read from the twin between two turns of the event loop: a few milliseconds. */
export const CHECKPOINT_SLICE_DEVICES = 5_000

/**
 * The rows a checkpoint writes for `delta`, read from the twin's state
 * `sliceDevices` devices at a time with a turn of the event loop between.
 * At full city a minute's checkpoint is 219,300 devices and 550,000 rows:
 * read and encoded in one turn they held the process that serves the API
 * for about a second (a CPU profile of the whole system, 2026-12-01).
 * A device read in a later turn may hold values newer than
 * `delta.positions`: harmless, as the twin keeps a value only over an
 * older one, so what a load replays above those positions changes nothing
 * it already has. (Connectivity rows come from the delta itself, as noted
 * when each event was applied, not from the twin's state.)
 */
export async function checkpointRows(twin: Twin, delta: CheckpointDelta, sliceDevices = CHECKPOINT_SLICE_DEVICES): Promise<CheckpointRows> {
  // Each slice's lines made bytes as it ends: one join of 550,000 lines would be a turn of its own.
  const slices = new BodySlices()
  let lines: string[] = []
  let rows = 0
  let inSlice = 0
  for (const id of delta.readings) {
    if (inSlice++ === sliceDevices) {
      inSlice = 1
      slices.add(lines)
      lines = []
      await nextTurn()
    }
    const i = twin.deviceIndex(id)
    if (i === undefined) continue
    const live = twin.deviceLive(i)
    const metrics = twin.deviceMetrics(i)
    for (let k = 0; k < metrics.length; k++) {
      const ts = live.times[k] ?? Number.NaN
      if (Number.isNaN(ts)) continue
      lines.push(JSON.stringify([id, metrics[k], ts, live.values[k]]))
      rows++
    }
  }
  const connectivity: CheckpointRows['connectivity'] = [...delta.connectivity].map(([id, c]) => [id, c.ts, c.connected ? 1 : 0])
  slices.add(lines)
  return { latest: { body: slices.body(), rows }, connectivity }
}

/**
 * Writes a checkpoint: the devices' rows, then the positions. Rows written
 * by a checkpoint whose positions were never written are harmless: they are
 * true state, and the next load replays from the older positions anyway.
 */
export async function writeCheckpoint(client: ClickHouseClient, rows: CheckpointRows, positions: Positions, now = Date.now()): Promise<void> {
  await sendEncoded(client, { table: 'device_latest', columns: ['device_id', 'metric', 'ts', 'value'], body: rows.latest.body })
  await insertRows(client, 'device_connectivity', ['device_id', 'ts', 'connected'], rows.connectivity)
  await client.insert({
    table: 'twin_checkpoints', columns: ['at', 'readings_pos', 'events_pos', 'devices'], format: 'JSONCompactEachRow',
    values: [[now, String(positions.readings), String(positions.events), rows.latest.rows + rows.connectivity.length]],
  })
}

/** The positions of the latest checkpoint (migration 8 wrote the first). */
export async function checkpointPositions(client: ClickHouseClient): Promise<Positions> {
  const rs = await client.query({ query: 'SELECT toString(max(readings_pos)), toString(max(events_pos)) FROM twin_checkpoints', format: 'JSONCompactEachRow' })
  const [[readings = '0', events = '0'] = []] = await rs.json<[string, string]>()
  return { readings: Number(readings), events: Number(events) }
}
