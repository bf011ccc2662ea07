// The telemetry decoder is pure: plain data in, rows or a coded rejection out.
import { describe, expect, it } from 'vitest'
import { decodeTelemetry, RateLimiter, type DeviceInfo, type TelemetryLimits } from '../../ingest/mqtt/telemetry.ts'
import { deviceToken, tokenMatches } from '../../ingest/mqtt/tokens.ts'
import { ownPublishKind } from '../../ingest/mqtt/devices.ts'

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0)
const limits: TelemetryLimits = { maxPayloadBytes: 1024, maxReadingsPerMessage: 4, maxFutureMs: 300_000, maxPastMs: 86_400_000 }
const smoke: DeviceInfo = { id: 'D0000042', type: 'smoke', microGridId: 7, communityId: 6, streetId: 5, districtId: 4, lon: 113.6, lat: 34.7 }
const msg = (o: unknown) => Buffer.from(JSON.stringify(o))
const decode = (o: unknown, lastSeq?: number, dup = false) => decodeTelemetry(smoke, Buffer.isBuffer(o) ? o : msg(o), lastSeq, NOW, limits, dup)

describe('decodeTelemetry', () => {
  it('turns one message into a row per metric', () => {
    const r = decode({ ts: NOW - 1000, seq: 5, values: { obscuration_pct_m: 0.2, temperature_c: 21.5 } })
    expect(r).toEqual({
      ok: true, lastSeq: 5, readings: 1,
      rows: [
        [NOW - 1000, 'D0000042', 'smoke', 'obscuration_pct_m', 0.2, 5, 7, 6, 5, 4, NOW],
        [NOW - 1000, 'D0000042', 'smoke', 'temperature_c', 21.5, 5, 7, 6, 5, 4, NOW],
      ],
    })
  })

  it('accepts the batched form, oldest first', () => {
    const r = decode({ readings: [{ ts: NOW - 2000, seq: 8, values: { battery_pct: 80 } }, { ts: NOW - 1000, seq: 9, values: { battery_pct: 79 } }] }, 7)
    expect(r).toMatchObject({ ok: true, lastSeq: 9, readings: 2 })
    expect(r.ok && r.rows.map((row) => row[5])).toEqual([8, 9])
  })

  it.each([
    ['malformed JSON', Buffer.from('{"ts": 1,'), 'INGEST_BAD_JSON'],
    ['payload over the limit', Buffer.alloc(2000, 0x20), 'INGEST_PAYLOAD_TOO_LARGE'],
    ['too many readings', { readings: Array.from({ length: 5 }, (_, i) => ({ ts: NOW, seq: i + 1, values: { battery_pct: 1 } })) }, 'INGEST_PAYLOAD_TOO_LARGE'],
    ['not an object', [1, 2, 3], 'INGEST_BAD_TYPE'],
    ['ts as a string', { ts: '2026-11-22T12:00:00Z', seq: 1, values: { battery_pct: 1 } }, 'INGEST_BAD_TYPE'],
    ['value as a string', { ts: NOW, seq: 1, values: { battery_pct: '80' } }, 'INGEST_BAD_TYPE'],
    ['no values', { ts: NOW, seq: 1, values: {} }, 'INGEST_BAD_TYPE'],
    ['negative seq', { ts: NOW, seq: -1, values: { battery_pct: 1 } }, 'INGEST_BAD_TYPE'],
    ['unknown metric', { ts: NOW, seq: 1, values: { ch4_pct_lel: 3 } }, 'INGEST_UNKNOWN_METRIC'],
    ['out of range', { ts: NOW, seq: 1, values: { temperature_c: 400 } }, 'INGEST_OUT_OF_RANGE'],
    ['too far in the future', { ts: NOW + 600_000, seq: 1, values: { battery_pct: 1 } }, 'INGEST_TS_FUTURE'],
    ['too far in the past', { ts: NOW - 2 * 86_400_000, seq: 1, values: { battery_pct: 1 } }, 'INGEST_TS_PAST'],
    ['a ts beyond any date', { ts: 8_640_000_000_000_001, seq: 1, values: { battery_pct: 1 } }, 'INGEST_TS_FUTURE'],
    ['missing seq', { ts: NOW, values: { battery_pct: 1 } }, 'INGEST_SEQ_MISSING'],
  ])('rejects %s', (_name, payload, code) => {
    const r = decode(payload)
    expect(r.ok).toBe(false)
    expect(!r.ok && r.rejection.code).toBe(code)
    expect(!r.ok && r.rejection.reason.length).toBeGreaterThan(5)
  })

  it('stores a retransmission once: same seq again is a duplicate to acknowledge, not a row', () => {
    expect(decode({ ts: NOW, seq: 10, values: { battery_pct: 1 } }, 10)).toEqual({ ok: true, duplicate: true, rows: [], lastSeq: 10, readings: 0, seq: 10 })
    expect(decode({ ts: NOW, seq: 9, values: { battery_pct: 1 } }, 10, true)).toMatchObject({ ok: true, duplicate: true, lastSeq: 10, seq: 9 })
  })

  it('rejects a regressing or reused seq, and accepts 0 as a device restart', () => {
    expect(decode({ ts: NOW, seq: 9, values: { battery_pct: 1 } }, 10)).toMatchObject({ ok: false, rejection: { code: 'INGEST_SEQ_REGRESSED' } })
    expect(decode({ readings: [{ ts: NOW, seq: 11, values: { battery_pct: 1 } }, { ts: NOW, seq: 11, values: { battery_pct: 2 } }] }, 10))
      .toMatchObject({ ok: false, rejection: { code: 'INGEST_SEQ_DUPLICATE' } })
    expect(decode({ ts: NOW, seq: 0, values: { battery_pct: 1 } }, 10)).toMatchObject({ ok: true, lastSeq: 0, readings: 1 })
  })
})

describe('RateLimiter', () => {
  it('allows a burst, then the steady rate', () => {
    const r = new RateLimiter(1, 3)
    expect([0, 0, 0, 0].map(() => r.take('d', NOW))).toEqual([true, true, true, false])
    expect(r.take('d', NOW + 500)).toBe(false)
    expect(r.take('d', NOW + 1000)).toBe(true)
    expect(r.take('other', NOW)).toBe(true)
  })

  it('lets through at once what a device sent at its rate while the gateway held it unread', () => {
    const r = new RateLimiter(2, 20)
    // Steady at the rate, then 15 s held: the 30 messages it sent meanwhile come out together.
    for (let t = 0; t < 10_000; t += 500) expect(r.take('d', NOW + t, 0)).toBe(true)
    const after = NOW + 25_000
    expect(Array.from({ length: 30 }, () => r.take('d', after, 15_000)).every(Boolean)).toBe(true)
    // Without the held time, the burst is all it gets.
    const plain = new RateLimiter(2, 20)
    for (let t = 0; t < 10_000; t += 500) plain.take('d', NOW + t)
    expect(Array.from({ length: 30 }, () => plain.take('d', after)).filter(Boolean)).toHaveLength(20)
  })

  it('gives a device that floods no more than its rate on average, held or not', () => {
    const r = new RateLimiter(2, 20)
    let passed = 0
    let held = 0
    // 100 s of 50 msg/s, held unread half of the time.
    for (let t = 0; t < 100_000; t += 20) {
      if (t % 1_000 === 0) held += 500
      if (r.take('d', NOW + t, held)) passed++
    }
    expect(passed).toBeLessThanOrEqual(20 + 2 * 100)
  })
})

describe('device tokens', () => {
  it('derive from the id and the secret, and compare in constant time', () => {
    const t = deviceToken('s3cret', 'D0000001')
    expect(t).toHaveLength(32)
    expect(deviceToken('s3cret', 'D0000001')).toBe(t)
    expect(deviceToken('other', 'D0000001')).not.toBe(t)
    expect(tokenMatches('s3cret', 'D0000001', t)).toBe(true)
    expect(tokenMatches('s3cret', 'D0000002', t)).toBe(false)
    expect(tokenMatches('s3cret', 'D0000001', Buffer.from(t))).toBe(true)
    expect(tokenMatches('s3cret', 'D0000001', undefined)).toBe(false)
  })
})

describe('ownPublishKind', () => {
  it.each([
    ['devices/D0000001/telemetry', 'telemetry'],
    ['devices/D0000001/status', 'status'],
    ['devices/D0000001/events', 'events'],
    ['devices/D0000002/telemetry', undefined],
    ['devices/D00000011/telemetry', undefined],
    ['devices/D0000001/telemetry/x', undefined],
    ['devices/D0000001/commands/reboot', undefined],
    ['devices/D0000001', undefined],
    ['other/D0000001/telemetry', undefined],
  ])('%s -> %s', (topic, kind) => {
    expect(ownPublishKind(topic, 'D0000001')).toBe(kind)
  })
})
