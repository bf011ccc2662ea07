// Grid outlines as the API sends them (see twin/api/map-routes.ts) and as
// deck.gl's binary polygon attributes take them: no per-grid objects.
export interface GridGeometry {
  count: number
  ids: Int32Array
  /** Vertex index where each ring starts; count + 1 entries. */
  startIndices: Uint32Array
  /** lon, lat pairs. */
  positions: Float32Array
  /** Row of each grid id. */
  rowOf: Map<number, number>
  /** [minLon, minLat, maxLon, maxLat] of all vertices. */
  bounds: [number, number, number, number]
  /**
   * The same geometry as deck.gl's binary layer data, made once: deck.gl
   * compares data by reference, and a new object would re-tessellate every
   * polygon on every redraw.
   */
  polygons: { length: number; startIndices: Uint32Array; attributes: { getPolygon: { value: Float32Array; size: 2 } } }
  paths: { length: number; startIndices: Uint32Array; attributes: { getPath: { value: Float32Array; size: 2 } } }
  /**
   * The outlines as single segments (a LineLayer's binary data), made on
   * first use: software GL draws a segment quad much faster than a path's
   * joined, mitred segments.
   */
  readonly segments: { length: number; attributes: { getSourcePosition: { value: Float32Array; size: 2 }; getTargetPosition: { value: Float32Array; size: 2 } } }
}

export function decodeGeometry(buf: ArrayBuffer): GridGeometry {
  const head = new DataView(buf)
  const magic = String.fromCharCode(head.getUint8(0), head.getUint8(1), head.getUint8(2), head.getUint8(3))
  if (magic !== 'CTG1') throw new Error(`not grid geometry (magic ${JSON.stringify(magic)})`)
  const count = head.getUint32(4, true)
  const vertices = head.getUint32(8, true)
  const expected = 12 + 4 * count + 4 * (count + 1) + 8 * vertices
  if (buf.byteLength !== expected) throw new Error(`grid geometry of ${buf.byteLength} bytes, expected ${expected}`)
  const ids = new Int32Array(buf, 12, count)
  const startIndices = new Uint32Array(buf, 12 + 4 * count, count + 1)
  const positions = new Float32Array(buf, 16 + 8 * count, 2 * vertices)
  const rowOf = new Map<number, number>()
  for (let i = 0; i < count; i++) rowOf.set(ids[i] ?? 0, i)
  const bounds: [number, number, number, number] = [Infinity, Infinity, -Infinity, -Infinity]
  for (let v = 0; v < vertices; v++) {
    const lon = positions[2 * v] ?? 0
    const lat = positions[2 * v + 1] ?? 0
    if (lon < bounds[0]) bounds[0] = lon
    if (lat < bounds[1]) bounds[1] = lat
    if (lon > bounds[2]) bounds[2] = lon
    if (lat > bounds[3]) bounds[3] = lat
  }
  let segments: GridGeometry['segments'] | undefined
  return {
    count, ids, startIndices, positions, rowOf, bounds,
    polygons: { length: count, startIndices, attributes: { getPolygon: { value: positions, size: 2 } } },
    paths: { length: count, startIndices, attributes: { getPath: { value: positions, size: 2 } } },
    get segments() {
      segments ??= ringSegments(startIndices, positions)
      return segments
    },
  }
}

/** Each ring's consecutive vertex pairs as segments (rings are closed, so the last pair closes it). */
export function ringSegments(startIndices: Uint32Array, positions: Float32Array): GridGeometry['segments'] {
  const rings = startIndices.length - 1
  const vertices = (startIndices[rings] ?? 0)
  const n = Math.max(0, vertices - rings)
  const source = new Float32Array(2 * n)
  const target = new Float32Array(2 * n)
  let k = 0
  for (let r = 0; r < rings; r++) {
    for (let v = (startIndices[r] ?? 0); v < (startIndices[r + 1] ?? 0) - 1; v++) {
      source[2 * k] = positions[2 * v] ?? 0
      source[2 * k + 1] = positions[2 * v + 1] ?? 0
      target[2 * k] = positions[2 * v + 2] ?? 0
      target[2 * k + 1] = positions[2 * v + 3] ?? 0
      k++
    }
  }
  return { length: k, attributes: { getSourcePosition: { value: source.subarray(0, 2 * k), size: 2 }, getTargetPosition: { value: target.subarray(0, 2 * k), size: 2 } } }
}

/** Which grid level the map draws at a zoom: the city at a glance, micro-grids only up close. */
export type MapLevel = 'district' | 'street' | 'community' | 'micro'

export function levelForZoom(zoom: number): MapLevel {
  if (zoom < 11) return 'district'
  if (zoom < 12.5) return 'street'
  if (zoom < 14) return 'community'
  return 'micro'
}

/** Devices are drawn from this zoom on, only inside the view. */
export const POINTS_MIN_ZOOM = 14.5
/** Cameras from this one: at 14.5 the two kinds together clutter the map (and cost software GL twice the points). */
export const CAMERAS_MIN_ZOOM = 15.5
