// Camera quality: a camera offline, black, frozen or obstructed raises a
// ticket for the camera; it ends when the camera gateway reports it ok.
import type { CameraRule } from '../schema.ts'
import type { Place, StepResult } from './types.ts'

export interface CameraState {
  condition: string
  active: boolean
}

/** `condition` is one of the camera conditions, or 'ok'. */
/** `snapshot`: the API path of the picture the condition was seen in, kept on the ticket as its evidence. */
export function stepCamera(r: CameraRule, s: CameraState | undefined, condition: string, ts: number, key: string, place: Place, cameraId: string, snapshot?: string): StepResult<CameraState> {
  if (condition === 'ok') return { state: undefined, actions: s?.active ? [{ type: 'clear', ruleId: r.id, key, ts, place, ticket: r.ticket }] : [] }
  if (!(r.conditions as readonly string[]).includes(condition) || s?.active) return { state: s, actions: [] }
  return {
    state: { condition, active: true },
    actions: [{
      type: 'raise', ruleId: r.id, key, ticketType: r.ticketType, severity: r.severity ?? 'warning', subject: { cameraId }, place, ts, ticket: r.ticket,
      title: r.title, evidence: { condition, ...(snapshot ? { snapshot } : {}) },
    }],
  }
}
