// Colour scales of the map. Health 0..100 runs red -> amber -> green; open
// tickets colour a grid by the worst severity it holds; device and camera
// states have one colour each. Colours are RGBA bytes, as deck.gl's
// attributes take them.
export type RGBA = [number, number, number, number]

const RED: RGBA = [214, 48, 49, 200]
const AMBER: RGBA = [253, 203, 110, 200]
const GREEN: RGBA = [0, 184, 148, 200]
export const NO_DATA: RGBA = [160, 160, 160, 90]

function mix(a: RGBA, b: RGBA, t: number): RGBA {
  return [0, 1, 2, 3].map((k) => Math.round((a[k] ?? 0) + ((b[k] ?? 0) - (a[k] ?? 0)) * t)) as RGBA
}

/** Health score (0..100; NaN or negative when the grid has no devices) to a colour. */
export function healthColor(health: number): RGBA {
  if (!Number.isFinite(health) || health < 0) return NO_DATA
  const h = Math.min(100, health)
  return h < 50 ? mix(RED, AMBER, h / 50) : mix(AMBER, GREEN, (h - 50) / 50)
}

/** Open tickets of a grid to a colour: none is transparent-ish, then by the worst severity. */
export function ticketColor(info: number, warning: number, critical: number): RGBA {
  if (critical > 0) return [214, 48, 49, 220]
  if (warning > 0) return [225, 112, 85, 200]
  if (info > 0) return [116, 185, 255, 180]
  return [223, 230, 233, 60]
}

/** Device statuses in the API's order: unknown, online, silent, offline. */
export const DEVICE_STATUS_COLORS: readonly RGBA[] = [[178, 190, 195, 255], [0, 184, 148, 255], [253, 203, 110, 255], [214, 48, 49, 255]]
/** Camera states: unknown, ok, offline, degraded, tampered. */
export const CAMERA_STATUS_COLORS: readonly RGBA[] = [[178, 190, 195, 255], [9, 132, 227, 255], [214, 48, 49, 255], [253, 203, 110, 255], [108, 92, 231, 255]]

export const SEVERITY_RADIUS: Readonly<Record<string, number>> = { info: 6, warning: 9, critical: 13 }
