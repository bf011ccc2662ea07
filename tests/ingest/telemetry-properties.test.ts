// Properties of the telemetry decoder (ingest/mqtt/telemetry.ts) over
// generated payloads (fast-check): whatever a device sends, the decoder
// answers with rows or a rejection and never throws; every row it gives is
// one the store may take; and a well-formed reading is always taken whole.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeTelemetry, type DeviceInfo, type TelemetryLimits } from '../../ingest/mqtt/telemetry.ts'
import { DEVICE_TYPES } from '../../registry/device-types.ts'
import { ERROR_CODES } from '../../lib/errors.ts'

const NOW = 1_790_000_000_000
const limits: TelemetryLimits = { maxPayloadBytes: 4_096, maxReadingsPerMessage: 8, maxFutureMs: 300_000, maxPastMs: 86_400_000 }
const water: DeviceInfo = { id: 'D0000001', type: 'water_level', microGridId: 5, communityId: 4, streetId: 3, districtId: 2, lon: 113.6, lat: 34.7 }
const metrics = new Map((DEVICE_TYPES.find((t) => t.type === 'water_level')?.metrics ?? []).map((m) => [m.name, m]))

/** What a stored row must be: the device's own, a known metric in its range, a time inside the limits. */
function checkRow(row: readonly unknown[]): void {
  const [ts, id, type, metric, value, seq] = row as [number, string, string, string, number, number]
  expect(id).toBe(water.id)
  expect(type).toBe(water.type)
  const spec = metrics.get(metric)
  expect(spec, `metric ${metric}`).toBeDefined()
  expect(Number.isFinite(value) && value >= (spec?.min ?? 0) && value <= (spec?.max ?? 0)).toBe(true)
  expect(Number.isInteger(ts) && ts >= NOW - limits.maxPastMs && ts <= NOW + limits.maxFutureMs).toBe(true)
  expect(Number.isInteger(seq) && seq >= 0 && seq <= 0xffffffff).toBe(true)
}

function decodeChecked(payload: Buffer, lastSeq?: number, dup = false): ReturnType<typeof decodeTelemetry> {
  const r = decodeTelemetry(water, payload, lastSeq, NOW, limits, dup)
  if (!r.ok) expect(Object.keys(ERROR_CODES)).toContain(r.rejection.code)
  else for (const row of r.rows) checkRow(row)
  return r
}

describe('telemetry decoder properties', () => {
  it('answers any bytes with rows or a rejection, never a throw', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), fc.option(fc.nat()), fc.boolean(), (bytes, lastSeq, dup) => {
      decodeChecked(Buffer.from(bytes), lastSeq ?? undefined, dup)
    }), { numRuns: 2_000, seed: 13 })
  })

  it('gives only rows the store may take, whatever JSON it is sent', () => {
    const reading = fc.record({
      ts: fc.oneof(fc.integer({ min: NOW - 2 * limits.maxPastMs, max: NOW + 2 * limits.maxFutureMs }), fc.double(), fc.string()),
      seq: fc.oneof(fc.nat(), fc.integer(), fc.double(), fc.constant(null)),
      values: fc.dictionary(fc.oneof(fc.constantFrom('level_cm', 'battery_pct', '__proto__', 'constructor'), fc.string()), fc.oneof(fc.double(), fc.integer({ min: -10, max: 600 }), fc.jsonValue())),
    }, { requiredKeys: [] })
    const doc = fc.oneof(reading, fc.record({ readings: fc.array(reading, { maxLength: 12 }) }), fc.jsonValue())
    fc.assert(fc.property(doc, fc.option(fc.nat({ max: 50 })), (d, lastSeq) => {
      decodeChecked(Buffer.from(JSON.stringify(d) ?? 'null'), lastSeq ?? undefined)
    }), { numRuns: 3_000, seed: 14 })
  })

  it('takes a well-formed batch whole: one row per value, seqs moving on', () => {
    const value = fc.record({ level_cm: fc.double({ min: 0, max: 500, noNaN: true }), battery_pct: fc.integer({ min: 0, max: 100 }) }, { requiredKeys: ['level_cm'] })
    fc.assert(fc.property(fc.array(value, { minLength: 1, maxLength: limits.maxReadingsPerMessage }), fc.nat({ max: 1_000 }), (values, from) => {
      const readings = values.map((v, i) => ({ ts: NOW - i * 1_000, seq: from + 1 + i, values: v }))
      const r = decodeChecked(Buffer.from(JSON.stringify({ readings })), from)
      expect(r.ok && !('duplicate' in r)).toBe(true)
      if (!r.ok) return
      expect(r.rows).toHaveLength(values.reduce((n, v) => n + Object.keys(v).length, 0))
      expect(r.lastSeq).toBe(from + values.length)
    }), { numRuns: 500, seed: 15 })
  })
})
