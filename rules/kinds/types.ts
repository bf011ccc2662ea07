// What every rule kind shares: the inputs a rule sees, the context it may
// read, and the actions it returns. A rule is a pure step function
// `(params, state, input, ctx) -> { state, actions }`: no I/O, no clock but
// the input's own time, so a test (or a replay) drives it at any speed.
import type { Element, Severity } from '../../lib/bus/elements.ts'
import type { DeviceType } from '../../registry/device-types.ts'
import type { Place } from '../../registry/locate.ts'
import type { DeviceStatus } from '../../twin/state/device.ts'

export const MODES = ['normal', 'holiday', 'major_event', 'emergency'] as const
export type Mode = (typeof MODES)[number]

export const AREA_LEVELS = ['micro', 'community', 'street', 'district'] as const
export type AreaLevel = (typeof AREA_LEVELS)[number]

/** A camera event derived by the camera gateway (or injected by a scenario). */
export const CAMERA_EVENTS = ['offline', 'black', 'frozen', 'obstructed', 'scene_change', 'motion'] as const
export type CameraEventName = (typeof CAMERA_EVENTS)[number]

export type RuleInput =
  | Element
  /** A device's status moved (the twin's reducer or its sweep decided it). */
  | { kind: 'status'; deviceId: string; ts: number; status: DeviceStatus; previous: DeviceStatus; since: number }
  /** Time passed with nothing else to say: windows expire, silences come due. */
  | { kind: 'tick'; ts: number }
  /** Another rule's signal turned on or off in a place (feeds composite rules). */
  | { kind: 'signal'; ruleId: string; ts: number; active: boolean; place: Place; key: string }

/** Where a subject stands, at every grid level: the registry's record of it. */
export type { Place }

export interface SubjectInfo extends Place {
  /** A device's type; '' for a camera. */
  type: DeviceType | ''
  intervalS: number
  /** Kinds of the special grids it stands in (park, school...). */
  specialKinds: readonly string[]
}

/** What a rule may read besides its own state: the city as the twin knows it. */
export interface RuleContext {
  device(id: string): SubjectInfo | undefined
  camera(id: string): SubjectInfo | undefined
  /** Devices in a grid (of the given types, or all). */
  devicesIn(level: AreaLevel, gridId: number, types?: readonly DeviceType[]): number
  /** A grid's place (its centroid), for tickets about an area. */
  gridPlace(level: AreaLevel, gridId: number): Place | undefined
  /** The operating mode in force in a district. */
  mode(districtId: number): Mode
  /** Offset of local time from UTC in minutes (rules about "night" read local hours). */
  utcOffsetMin: number
  /**
   * Whether absence is not to be judged now: ingest is degraded, so a device
   * that sends nothing may only be queued or refused (twin/state/ingest-health.ts).
   * Silence and area-outage rules raise nothing meanwhile. Absent: always judged.
   */
  absenceHeld?(): boolean
}

export type Subject = { deviceId: string } | { cameraId: string } | { gridLevel: AreaLevel; gridId: number }

export interface Raise {
  type: 'raise'
  ruleId: string
  /** (rule, place, subject): at most one open ticket per key. */
  key: string
  ticketType: string
  severity: Severity
  subject: Subject
  place: Place
  ts: number
  title: string
  /** What the rule saw, kept on the ticket as evidence. */
  evidence: Record<string, unknown>
  /** false: a signal for composite rules only, no ticket. */
  ticket: boolean
}

export interface Clear {
  type: 'clear'
  ruleId: string
  key: string
  ts: number
  place: Place
  ticket: boolean
}

export type Action = Raise | Clear

export interface StepResult<S> {
  state: S | undefined
  actions: Action[]
}

/** Local hour of day (0-23) at `ts`. */
export function localHour(ts: number, utcOffsetMin: number): number {
  return new Date(ts + utcOffsetMin * 60_000).getUTCHours()
}

/** Whether `hour` falls in [from, to), wrapping past midnight when from > to. */
export function inHours(hour: number, [from, to]: readonly [number, number]): boolean {
  return from <= to ? hour >= from && hour < to : hour >= from || hour < to
}

export function gridOf(place: Place, level: AreaLevel): number {
  switch (level) {
    case 'micro': return place.microGridId
    case 'community': return place.communityId
    case 'street': return place.streetId
    case 'district': return place.districtId
  }
}
