// The health score of a grid, 0 (worst) to 100 (best), from its roll-up
// counts. Documented in docs/twin.md; a change here is a change there.
//
//   availability = (devices online + cameras ok + half the degraded cameras)
//                  / (devices and cameras whose state is known)     [1 when none is known]
//                  (a tampered camera is known and not available: it does not show its view)
//   penalty      = 20 per critical + 5 per warning + 1 per info open ticket,
//                  per 100 devices and cameras in the grid (at least 100), at most 60
//   health       = round(100 x availability - penalty), within 0..100
export interface HealthInputs {
  devices: { unknown: number; online: number; silent: number; offline: number }
  cameras: { unknown: number; ok: number; offline: number; degraded: number; tampered: number }
  tickets: { info: number; warning: number; critical: number }
}

export function healthScore(h: HealthInputs): number {
  const knownDevices = h.devices.online + h.devices.silent + h.devices.offline
  const knownCameras = h.cameras.ok + h.cameras.offline + h.cameras.degraded + h.cameras.tampered
  const known = knownDevices + knownCameras
  const availability = known === 0 ? 1 : (h.devices.online + h.cameras.ok + 0.5 * h.cameras.degraded) / known
  const assets = knownDevices + h.devices.unknown + knownCameras + h.cameras.unknown
  const weighted = 20 * h.tickets.critical + 5 * h.tickets.warning + h.tickets.info
  const penalty = Math.min(60, (weighted * 100) / Math.max(100, assets))
  return Math.max(0, Math.min(100, Math.round(100 * availability - penalty)))
}
