// Where a telemetry message becomes reading rows. Pure: it takes the device,
// the raw payload, the device's sequence state and the clock, and returns
// either rows for the store or a rejection with a stable code. The gateway
// around it does the I/O (MQTT, the store writer, dead letters).
//
// Payload, single form:  {"ts": <ms epoch>, "seq": <uint32>, "values": {"<metric>": <number>, ...}}
// Payload, batched form: {"readings": [<single form>, ...]}  (oldest first)
import type { ErrorCode } from '../../lib/errors.ts'
import { DEVICE_TYPE_BY_NAME, type DeviceType, type MetricSpec } from '../../registry/device-types.ts'
import type { Device } from '../../registry/city.ts'
import type { Row } from '../../store/writer.ts'

/** What the gateway knows of a device: the city model's record without its install date and interval. */
export type DeviceInfo = Pick<Device, 'id' | 'type' | 'microGridId' | 'communityId' | 'streetId' | 'districtId' | 'lon' | 'lat'> & {
  /** Its credential version (ingest/mqtt/tokens.ts): 0 until its credentials are first rotated. */
  credentialVersion?: number
}

export interface TelemetryLimits {
  maxPayloadBytes: number
  maxReadingsPerMessage: number
  /** How far ahead of the gateway's clock a timestamp may be. */
  maxFutureMs: number
  /** How far behind the gateway's clock a timestamp may be. */
  maxPastMs: number
}

export interface Rejection {
  code: ErrorCode
  reason: string
}

export type TelemetryResult =
  | { ok: true; rows: Row[]; lastSeq: number; readings: number }
  | { ok: false; rejection: Rejection }
  /** A retransmission of what was already accepted: acknowledge, store nothing. */
  /** `seq`: the message's own (first) seq, judged already accepted. */
  | { ok: true; duplicate: true; rows: []; lastSeq: number; readings: 0; seq: number }

export const READINGS_COLUMNS = ['ts', 'device_id', 'device_type', 'metric', 'value', 'seq', 'micro_grid_id', 'community_id', 'street_id', 'district_id', 'received_at'] as const

const METRICS_BY_TYPE: ReadonlyMap<DeviceType, ReadonlyMap<string, MetricSpec>> = new Map(
  [...DEVICE_TYPE_BY_NAME].map(([type, spec]) => [type, new Map(spec.metrics.map((m) => [m.name, m]))]),
)

const reject = (code: ErrorCode, reason: string): TelemetryResult => ({ ok: false, rejection: { code, reason } })

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function hasKeys(o: Record<string, unknown>): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true
  return false
}

/**
 * Decodes and validates one telemetry payload. `lastSeq` is the highest
 * sequence number accepted from this device so far (undefined if none);
 * `dup` is the MQTT DUP flag of the PUBLISH.
 */
/**
 * A device's timestamp for a message: ISO 8601 where JavaScript dates reach
 * (±8.64e15 ms), else the number itself. Found by the decoder's property
 * test: toISOString throws for a later ts, and the decoder then threw
 * instead of rejecting the message.
 */
export function timeOf(ms: number): string {
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ms} ms since the epoch`
}

export function decodeTelemetry(device: DeviceInfo, payload: Buffer, lastSeq: number | undefined, now: number, limits: TelemetryLimits, dup = false): TelemetryResult {
  if (payload.length > limits.maxPayloadBytes) {
    return reject('INGEST_PAYLOAD_TOO_LARGE', `payload is ${payload.length} bytes; the limit is ${limits.maxPayloadBytes}`)
  }
  let doc: unknown
  try {
    doc = JSON.parse(payload.toString('utf8'))
  } catch (e) {
    return reject('INGEST_BAD_JSON', `payload is not JSON: ${(e as Error).message}`)
  }
  let items: unknown[]
  if (isRecord(doc) && 'readings' in doc) {
    if (!Array.isArray(doc.readings) || doc.readings.length === 0) return reject('INGEST_BAD_TYPE', '"readings" must be a non-empty array')
    if (doc.readings.length > limits.maxReadingsPerMessage) {
      return reject('INGEST_PAYLOAD_TOO_LARGE', `${doc.readings.length} readings in one message; the limit is ${limits.maxReadingsPerMessage}`)
    }
    items = doc.readings
  } else {
    items = [doc]
  }
  const metrics = METRICS_BY_TYPE.get(device.type)
  if (!metrics) return reject('INGEST_BAD_TYPE', `device ${device.id} has unknown type ${device.type}`)

  const rows: Row[] = []
  let seqCursor = lastSeq
  let firstSeq: number | undefined
  // Per message on every gateway worker: plain index loops, no iterator or entry arrays.
  for (let i = 0; i < items.length; i++) {
    const item = items[i]
    const at = items.length > 1 ? `readings[${i}].` : ''
    if (!isRecord(item)) return reject('INGEST_BAD_TYPE', `${at || 'payload'} must be an object with ts, seq and values`)
    const { ts, seq, values } = item
    if (seq === undefined || seq === null) return reject('INGEST_SEQ_MISSING', `${at}seq is missing`)
    if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0 || seq > 0xffffffff) return reject('INGEST_BAD_TYPE', `${at}seq must be an integer from 0 to 4294967295`)
    if (typeof ts !== 'number' || !Number.isInteger(ts) || ts < 0) return reject('INGEST_BAD_TYPE', `${at}ts must be an integer of epoch milliseconds`)
    if (!isRecord(values) || !hasKeys(values)) return reject('INGEST_BAD_TYPE', `${at}values must be a non-empty object of metric: number`)
    if (ts > now + limits.maxFutureMs) return reject('INGEST_TS_FUTURE', `${at}ts ${timeOf(ts)} is more than ${limits.maxFutureMs} ms ahead of the gateway clock`)
    if (ts < now - limits.maxPastMs) return reject('INGEST_TS_PAST', `${at}ts ${timeOf(ts)} is more than ${limits.maxPastMs} ms behind the gateway clock`)
    if (seqCursor !== undefined && seq <= seqCursor) {
      // A retransmitted message (DUP flag, or the whole message already
      // accepted) is acknowledged again but stored once. Seq 0 after a
      // higher one is a device restart.
      if (i === 0 && (dup || items.length === 1) && seq === seqCursor) return { ok: true, duplicate: true, rows: [], lastSeq: seqCursor, readings: 0, seq }
      const restart = seq === 0 && i === 0
      if (!restart) {
        if (seq === seqCursor) return reject('INGEST_SEQ_DUPLICATE', `${at}seq ${seq} was already used`)
        if (i === 0 && dup) return { ok: true, duplicate: true, rows: [], lastSeq: seqCursor, readings: 0, seq }
        return reject('INGEST_SEQ_REGRESSED', `${at}seq ${seq} is below the last accepted ${seqCursor}`)
      }
    }
    firstSeq ??= seq
    seqCursor = seq
    for (const metric in values) {
      if (!Object.hasOwn(values, metric)) continue
      const value = values[metric]
      const spec = metrics.get(metric)
      if (!spec) return reject('INGEST_UNKNOWN_METRIC', `${at}values.${metric} is not a metric of ${device.type} (${[...metrics.keys()].join(', ')})`)
      if (typeof value !== 'number' || !Number.isFinite(value)) return reject('INGEST_BAD_TYPE', `${at}values.${metric} must be a finite number`)
      if (value < spec.min || value > spec.max) {
        return reject('INGEST_OUT_OF_RANGE', `${at}values.${metric} = ${value} ${spec.unit} is outside [${spec.min}, ${spec.max}]`)
      }
      rows.push([ts, device.id, device.type, metric, value, seq, device.microGridId, device.communityId, device.streetId, device.districtId, now])
    }
  }
  return { ok: true, rows, lastSeq: seqCursor ?? firstSeq ?? 0, readings: items.length }
}

/** The most held time a device's bucket is credited for: an hour of its rate. */
const MAX_HELD_CREDIT_S = 3_600

/**
 * Token bucket per device: `ratePerS` on average, `burst` above it; pure
 * over its state, the clock an argument. The
 * gateway judges a message when it reads it, not when the device sent it;
 * while the gateway held a connection unread (the store away, no room),
 * the device kept sending at its pace, and what it sent then comes in one
 * burst. So time held (`heldMs`, cumulative for the connection) raises the
 * bucket's cap by that time's worth of messages, spent before the cap comes
 * back down: tokens still accrue at `ratePerS` only, so a device that
 * floods gets no more through on average; one that kept to its rate loses
 * nothing to the gateway's stall (a fault-suite case found a 15 s store
 * outage dead-lettering a tenth of such devices' messages). Only the fast
 * lane measures holds: a connection aedes reads (mqtt.fastLane false, or
 * one that left the lane) gets no such credit.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number; allowance: number; held: number }>()
  constructor(readonly ratePerS: number, readonly burst: number) {}

  take(key: string, now: number, heldMs = 0): boolean {
    let b = this.#buckets.get(key)
    if (!b) {
      b = { tokens: this.burst, at: now, allowance: 0, held: 0 }
      this.#buckets.set(key, b)
    }
    // A new connection counts its holds from 0 again (the old one's bucket may outlive it by a moment).
    if (heldMs < b.held) b.held = 0
    if (heldMs > b.held) {
      b.allowance = Math.min(this.ratePerS * MAX_HELD_CREDIT_S, b.allowance + ((heldMs - b.held) / 1000) * this.ratePerS)
      b.held = heldMs
    }
    b.tokens = Math.min(this.burst + b.allowance, b.tokens + ((now - b.at) / 1000) * this.ratePerS)
    b.at = now
    if (b.tokens < 1) return false
    b.tokens -= 1
    // What is spent above the burst is spent of the allowance.
    b.allowance = Math.max(0, b.tokens - this.burst)
    return true
  }

  forget(key: string): void {
    this.#buckets.delete(key)
  }

  get size(): number {
    return this.#buckets.size
  }
}
