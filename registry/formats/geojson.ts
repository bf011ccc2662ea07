// Grids as GeoJSON (RFC 7946): a FeatureCollection with one Polygon feature
// per grid, its level, id, name and parent in the properties. The writer
// puts one feature on a line, so a file diffs line by line and the reader
// can say on which line a bad feature starts.
import type { Grid, GridLevel, Ring } from '../city.ts'

export interface GridFeature {
  type: 'Feature'
  properties: { id: number; level: GridLevel; name: string; code: string; parent_id: number | null; kind: string }
  geometry: { type: 'Polygon'; coordinates: Ring[] }
}

/** The grids as a FeatureCollection, one feature a line. */
export function gridsToGeoJson(grids: readonly Grid[]): string {
  const lines = grids.map((g) => JSON.stringify({
    type: 'Feature',
    properties: { id: g.id, level: g.level, name: g.name, code: g.code, parent_id: g.parentId === 0 ? null : g.parentId, kind: g.kind },
    geometry: { type: 'Polygon', coordinates: [g.ring] },
  } satisfies GridFeature))
  return `{"type":"FeatureCollection","features":[\n${lines.join(',\n')}\n]}\n`
}

/**
 * The line each element of the top-level "features" array starts on
 * (1-based), found by scanning the text as JSON.parse does not say. Any
 * element counts (a stray null or number too), so the lines stay aligned
 * with the elements' indexes.
 */
export function featureLines(text: string): number[] {
  const lines: number[] = []
  let line = 1
  let depth = 0
  let key = ''
  let inFeatures = false
  /** Inside the features array, before an element: the next value starts one. */
  let expecting = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string
    if (c === '\n') {
      line++
      continue
    }
    if (c === ' ' || c === '\t' || c === '\r') continue
    if (inFeatures && depth === 2) {
      if (c === ',') {
        expecting = true
        continue
      }
      if (expecting && c !== ']') {
        lines.push(line)
        expecting = false
      }
    }
    if (c === '"') {
      let s = ''
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\\') i++
        else if (text[i] === '\n') line++
        else s += text[i]
      }
      if (depth === 1) key = s
    } else if (c === '{' || c === '[') {
      depth++
      if (depth === 2 && c === '[' && key === 'features') {
        inFeatures = true
        expecting = true
      }
    } else if (c === '}' || c === ']') {
      depth--
      if (depth === 1) inFeatures = false
    }
  }
  return lines
}
