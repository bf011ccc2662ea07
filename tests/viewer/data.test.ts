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

const square = (x: number, y: number, s = 0.01): [number, number][] => [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]
const toArrayBuffer = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer

describe('grid geometry', () => {
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
})
