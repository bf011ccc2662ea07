// The viewer's data transforms, on plain data: the binary grid geometry the
// API encodes and the viewer decodes, the colour scales, live deltas applied
// in place, and device points recoloured by status.
import { describe, expect, it } from 'vitest'
import { encodeGeometry } from '../../twin/api/map-routes.ts'
import { GRID_COLUMNS } from '../../twin/api/live.ts'
import { healthColor, NO_DATA, ticketColor, DEVICE_STATUS_COLORS } from '../../viewer/src/data/colors.ts'
import { decodeGeometry, levelForZoom } from '../../viewer/src/data/geometry.ts'
import { GridState, rowToColumns } from '../../viewer/src/data/grid-state.ts'
import { PointSet } from '../../viewer/src/data/points.ts'
import { frameLabel, frameRows, type ReplayFrames } from '../../viewer/src/data/replay.ts'
import { isSoftwareRenderer } from '../../viewer/src/data/renderer.ts'
import { replayFrames } from '../../twin/state/replay.ts'

const square = (x: number, y: number, s = 0.01): [number, number][] => [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]
const toArrayBuffer = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer

describe('grid geometry', () => {
  it('turns closed rings into single segments for the outline layer, none across rings', () => {
    const g = decodeGeometry(toArrayBuffer(encodeGeometry([{ id: 1, ring: square(0, 0, 1) }, { id: 2, ring: square(5, 5, 1) }])))
    const seg = g.segments
    expect(seg.length).toBe(8) // 4 sides each; the closing vertex repeats the first
    expect([...seg.attributes.getSourcePosition.value.subarray(0, 2)]).toEqual([0, 0])
    expect([...seg.attributes.getTargetPosition.value.subarray(6, 8)]).toEqual([0, 0]) // the first ring closes on itself
    expect([...seg.attributes.getSourcePosition.value.subarray(8, 10)]).toEqual([5, 5]) // the second starts afresh
    expect(g.segments).toBe(seg) // made once
  })

  it('round-trips ids, ring starts and coordinates through the binary form', () => {
    const grids = [{ id: 7, ring: square(113.6, 34.7) }, { id: 42, ring: [[113.7, 34.8], [113.72, 34.8], [113.71, 34.82], [113.7, 34.8]] as [number, number][] }]
    const g = decodeGeometry(toArrayBuffer(encodeGeometry(grids)))
    expect(g.count).toBe(2)
    expect([...g.ids]).toEqual([7, 42])
    expect([...g.startIndices]).toEqual([0, 5, 9])
    expect(g.positions[2 * 5]).toBeCloseTo(113.7, 4)
    expect(g.positions[2 * 8 + 1]).toBeCloseTo(34.8, 4)
    expect(g.rowOf.get(42)).toBe(1)
    expect(g.bounds[0]).toBeCloseTo(113.6, 4)
    expect(g.bounds[3]).toBeCloseTo(34.82, 4)
  })

  it('refuses what is not grid geometry, or is cut short', () => {
    expect(() => decodeGeometry(new TextEncoder().encode('{"error":1}xxxxxxxx').buffer)).toThrow(/not grid geometry/)
    const whole = encodeGeometry([{ id: 1, ring: square(1, 1) }])
    expect(() => decodeGeometry(toArrayBuffer(whole.subarray(0, whole.length - 8)))).toThrow(/expected/)
  })

  it('draws districts at city zoom and micro-grids only up close', () => {
    expect([9, 11.5, 13, 15].map(levelForZoom)).toEqual(['district', 'street', 'community', 'micro'])
  })
})

describe('colour scales', () => {
  it('runs health from red through amber to green, grey without devices', () => {
    expect(healthColor(0)).toEqual([214, 48, 49, 200])
    expect(healthColor(50)).toEqual([253, 203, 110, 200])
    expect(healthColor(100)).toEqual([0, 184, 148, 200])
    expect(healthColor(Number.NaN)).toEqual(NO_DATA)
    // Greener as health rises: the green channel never falls from 0 to 50.
    const greens = [0, 10, 20, 30, 40, 50].map((h) => healthColor(h)[1])
    expect(greens).toEqual([...greens].sort((a, b) => a - b))
  })

  it('colours a grid by its worst open ticket', () => {
    expect(ticketColor(3, 0, 1)[0]).toBe(214)
    expect(ticketColor(3, 2, 0)).toEqual([225, 112, 85, 200])
    expect(ticketColor(0, 0, 0)[3]).toBeLessThan(100)
  })
})

describe('live deltas', () => {
  it('change only the grids drawn, in place, and bump the version', () => {
    const rowOf = new Map([[10, 0], [11, 1]])
    const s = new GridState(rowOf)
    const v0 = s.version
    const colors = s.colors
    const row = (id: number, health: number, critical: number): number[] => GRID_COLUMNS.map((c) => (c === 'id' ? id : c === 'health' ? health : c === 'ticketsCritical' ? critical : 0))
    expect(s.apply([rowToColumns(GRID_COLUMNS, row(11, 20, 1)), rowToColumns(GRID_COLUMNS, row(99, 100, 0))])).toBe(1)
    expect(s.version).toBe(v0 + 1)
    expect(s.colors).toBe(colors) // the same array: deck.gl gets new values, not a new layer
    expect(s.colorAt(1)).toEqual(healthColor(20))
    expect(s.colorAt(0)).toEqual(NO_DATA)
    s.colourBy = 'tickets'
    expect(s.colorAt(1)).toEqual(ticketColor(0, 0, 1))
    expect(s.apply([])).toBe(0)
  })

  it('recolour device points by status, ignoring devices not in view', () => {
    const p = new PointSet({ kind: 'devices', ids: ['D1', 'D2'], types: ['gas', 'smoke'], lon: [113.6, 113.7], lat: [34.7, 34.8], status: [1, 1], truncated: false })
    expect([...p.positions]).toEqual([113.6, 34.7, 113.7, 34.8].map((x) => Math.fround(x)))
    expect(p.update([['D2', 2], ['D9', 3], ['D1', 1]])).toBe(1)
    expect([...p.colors.subarray(4, 8)]).toEqual(DEVICE_STATUS_COLORS[2])
    expect(p.version).toBe(1)
  })

  it('draws only the points a filter keeps, and follows a status change into or out of it', () => {
    const p = new PointSet({ kind: 'devices', ids: ['D1', 'D2', 'D3'], types: ['gas', 'smoke', 'gas'], lon: [1, 2, 3], lat: [4, 5, 6], status: [1, 3, 3], truncated: false })
    const data = p.data
    p.setFilter({ type: 'gas', status: 3 })
    expect(p.data).not.toBe(data) // a new layer input only when the filter changes
    expect(p.data.length).toBe(1)
    expect(p.ids[p.drawnRow(0)]).toBe('D3')
    expect([...p.data.attributes.getPosition.value]).toEqual([3, 6])
    // D1 goes offline: now the filter takes it too.
    p.update([['D1', 3]])
    expect(p.data.length).toBe(2)
    expect([p.drawnRow(0), p.drawnRow(1)].map((r) => p.ids[r])).toEqual(['D1', 'D3'])
    p.setFilter({})
    expect(p.data.length).toBe(3)
  })
})

describe('replay frames', () => {
  const frames: ReplayFrames = { level: 'district', stepMs: 3_600_000, times: [0, 3_600_000], ids: [5, 6], health: [-1, 80, 100, 40], worst: [0, 3, 0, 1] }

  it('turns a frame into grid rows: no data as NaN, the worst ticket as one of its severity', () => {
    const rows = frameRows(frames, 0)
    expect(rows.map((r) => r.id)).toEqual([5, 6])
    expect(rows[0]?.health).toBeNaN()
    expect(rows[1]).toMatchObject({ health: 80, ticketsInfo: 0, ticketsWarning: 0, ticketsCritical: 1 })
    const s = new GridState(new Map([[5, 0], [6, 1]]))
    s.apply(frameRows(frames, 1))
    expect(s.colorAt(0)).toEqual(healthColor(100))
    expect(s.colorAt(1)).toEqual(healthColor(40))
  })

  it('labels a frame with the hour it covers', () => {
    expect(frameLabel(frames, 1, 'en-GB')).toMatch(/\d\d:00–\d\d:00$/)
    expect(frameLabel(frames, 5, 'en-GB')).toBe('')
  })
})

describe('replay frames from the store\'s figures', () => {
  it('scores each hour from messages over those expected, with the live health formula, and counts tickets open at its end', () => {
    const HOUR = 3_600_000
    const r = replayFrames({
      level: 'street', from: 0, to: 3 * HOUR, ids: [100], levelOf: new Map([[10, 100], [11, 100]]),
      devices: new Map([[10, new Map([['gas', 2]])], [11, new Map([['smoke', 2]])]]), intervalS: new Map([['gas', 5], ['smoke', 10]]),
      // hour 1: all four report; hour 2: only the gas pair, and half of their messages (one device's worth).
      received: [[HOUR, 10, 'gas', 2 * 720], [HOUR, 11, 'smoke', 2 * 360], [2 * HOUR, 10, 'gas', 720]],
      tickets: [[HOUR + 10, null, 'critical', 11], [10, HOUR - 1, 'info', 10]],
    })
    expect(r.times).toEqual([0, HOUR, 2 * HOUR])
    // Hour 0: no readings anywhere, so no score. Hour 1: 4 of 4 reporting, a critical open (20 points). Hour 2: 1 of 4.
    expect(r.health).toEqual([-1, 80, 5])
    // The info ticket was done just before hour 0 ended; the critical one opened in hour 1 and stays.
    expect(r.worst).toEqual([0, 3, 3])
  })

  it('expects of the hour under way only what the roll-ups have written of it', () => {
    const HOUR = 3_600_000
    // Half an hour into hour 1; the roll-ups hold its first 20 minutes (say, a store that fell behind: the minutes since are held).
    const at = { level: 'street' as const, from: 0, to: HOUR + 30 * 60_000, ids: [100], levelOf: new Map([[10, 100]]),
      devices: new Map([[10, new Map([['gas', 4]])]]), intervalS: new Map([['gas', 60]]),
      // All four devices, every minute of the 20.
      received: [[HOUR, 10, 'gas', 4 * 20]] as const, tickets: [] }
    expect(replayFrames({ ...at, heldUpTo: HOUR + 20 * 60_000 }).health).toEqual([-1, 100])
    // Counted against the whole half hour, the ten minutes held would look like a device missing.
    expect(replayFrames(at).health).toEqual([-1, 75])
    // Sums of an hour the roll-ups' record has not reached (written ahead of it): no figure, not a full score.
    expect(replayFrames({ ...at, heldUpTo: HOUR - 60_000 }).health).toEqual([-1, -1])
  })
})

describe('software GL', () => {
  it('is told from a GPU by the renderer\'s name', () => {
    // Renderer names as browsers report them (WEBGL_debug_renderer_info).
    expect(isSoftwareRenderer('ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero) (0x0000C0DE)), SwiftShader driver)')).toBe(true)
    expect(isSoftwareRenderer('llvmpipe (LLVM 15.0.6, 256 bits)')).toBe(true)
    expect(isSoftwareRenderer('ANGLE (Microsoft, Microsoft Basic Render Driver Direct3D11 vs_5_0 ps_5_0, D3D11)')).toBe(true)
    expect(isSoftwareRenderer('ANGLE (NVIDIA Corporation, NVIDIA H100 80GB HBM3/PCIe/SSE2, OpenGL 4.5.0)')).toBe(false)
    expect(isSoftwareRenderer('ANGLE (Intel, Intel(R) UHD Graphics 620 Direct3D11 vs_5_0 ps_5_0, D3D11)')).toBe(false)
  })
})
