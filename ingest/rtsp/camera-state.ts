// What a probe means for a camera: its status, and the events the rules
// read. Pure: the camera's state before, a probe's result, its stream
// profile and the clock in; the state after and what to report out.
//
// Status (the twin's, per camera):
//   offline   the probe failed `failuresToOffline` times in a row (one
//             refused connection is not an outage), with the failure's class
//   tampered  the picture says someone or something interfered: black,
//             frozen, obstructed, or the camera moved off its view
//   degraded  reachable, but sending far below what it should: a frame
//             rate under `minFpsShare` of the one it states (its SDP, else
//             its registry profile), a bitrate under `minBitrateShare` of
//             its own usual one (learned from its healthy windows: the
//             registry's profile is often not what a camera was set to),
//             or over `maxLoss` of its packets lost
//   ok        otherwise
// A probe of reachability alone says nothing of the stream or the view, so
// it keeps a degraded or tampered camera so (and brings an offline one back
// to ok). A status goes out when it changes, and again every
// `statusEveryS`, so the twin knows the camera is still watched.
//
// Events (the rules' camera events, their names the rules' conditions):
// black, frozen, obstructed and scene_change when a condition starts, and
// again every `repeatEventS` while it lasts (a composite rule joins it to a
// smoke alarm within its window); motion when it starts, and again every
// `motionRepeatS` while it goes on (a busy street is in motion all day: an
// event at each sample would be millions a day for the city).
import type { CameraStatus, Severity } from '../../lib/bus/elements.ts'
import type { FailureClass } from './client.ts'
import type { PictureVerdict } from './picture-checks.ts'
import type { ProbeResult } from './probe.ts'

/** The states the gateway reports: the bus's camera statuses. */
export type CameraState = CameraStatus

export interface CameraProfile {
  fps: number
  bitrateKbps: number
}

export interface CameraJudgePolicy {
  failuresToOffline: number
  minFpsShare: number
  minBitrateShare: number
  maxLoss: number
  statusEveryS: number
  repeatEventS: number
  motionRepeatS: number
}

export const DEFAULT_JUDGE_POLICY: CameraJudgePolicy = { failuresToOffline: 2, minFpsShare: 0.5, minBitrateShare: 0.25, maxLoss: 0.05, statusEveryS: 900, repeatEventS: 300, motionRepeatS: 3_600 }

/** What the gateway remembers of a camera between probes. */
export interface CameraMemory {
  status?: CameraState
  /** When the status last went out. */
  statusSentAt?: number
  failures: number
  /** The picture condition in force (not 'ok'), when its event last went out, and whether the camera moved off its view. */
  condition?: { name: string; sentAt: number; moved?: boolean }
  /** What the last window found wrong with the stream, while it lasts (a probe of reachability alone keeps it). */
  streamDegraded?: string
  /** While the pictures show motion: when its event last went out. */
  motionSentAt?: number
  /** The camera's usual bitrate, an average of its healthy windows. */
  bitrateKbps?: number
}

export interface CameraReport {
  /** The status to send now, with why; absent when nothing changed and none is due. */
  status?: { state: CameraState; detail: string; failure?: FailureClass }
  events: { name: string; severity: Severity; detail: string }[]
  memory: CameraMemory
}

const TAMPERING = new Set(['black', 'frozen', 'obstructed'])

/** The picture condition a verdict stands for as a camera event, or undefined for none. */
function pictureEvent(v: Omit<PictureVerdict, 'baseline'> | undefined): string | undefined {
  if (!v || v.condition === 'ok') return undefined
  return v.condition
}

export function judgeProbe(before: CameraMemory, probe: ProbeResult, profile: CameraProfile | undefined, nowMs: number, p: CameraJudgePolicy = DEFAULT_JUDGE_POLICY): CameraReport {
  const memory: CameraMemory = { ...before }
  const events: CameraReport['events'] = []
  let state: CameraState
  let detail: string
  let failure: FailureClass | undefined
  if (!probe.ok) {
    memory.failures = before.failures + 1
    failure = probe.failure?.class
    if (memory.failures < p.failuresToOffline) {
      // A first failure (also of a camera not judged yet, as after a restart): nothing is said until it repeats.
      return { events, memory }
    }
    state = 'offline'
    detail = `${probe.failure?.class ?? 'failed'} at ${probe.step}: ${probe.failure?.message ?? ''}`.trim()
  } else {
    memory.failures = 0
    const verdict = probe.pictures?.verdict
    const event = pictureEvent(verdict)
    const moved = verdict?.condition === 'scene_change' && verdict.cause === 'moved'
    if (event && verdict) {
      const repeat = memory.condition?.name === event && nowMs - memory.condition.sentAt < p.repeatEventS * 1000
      if (!repeat) {
        events.push({ name: event, severity: TAMPERING.has(event) || moved ? 'warning' : 'info', detail: verdict.reason })
        memory.condition = { name: event, sentAt: nowMs, ...(moved ? { moved } : {}) }
      }
    } else if (verdict) {
      delete memory.condition
    }
    if (verdict?.motion) {
      if (memory.motionSentAt === undefined || nowMs - memory.motionSentAt >= p.motionRepeatS * 1000) {
        events.push({ name: 'motion', severity: 'info', detail: `${Math.round((verdict.changed ?? 0) * 1000) / 10}% of the picture changed` })
        memory.motionSentAt = nowMs
      }
    } else if (verdict) {
      delete memory.motionSentAt
    }
    const h = probe.health
    const statedFps = probe.video?.fps ?? profile?.fps
    const slow = statedFps !== undefined && h?.fps !== undefined && h.fps < statedFps * p.minFpsShare
    const thin = before.bitrateKbps !== undefined && h?.bitrateKbps !== undefined && h.bitrateKbps < before.bitrateKbps * p.minBitrateShare
    const lossy = h !== undefined && h.lossRatio > p.maxLoss
    if (h) {
      const wrong = [slow ? `${h.fps ?? 0} fps of ${statedFps ?? 0}` : '', thin && !event ? `${h.bitrateKbps ?? 0} kbit/s of its usual ${Math.round(before.bitrateKbps ?? 0)}` : '', lossy ? `${Math.round(h.lossRatio * 1000) / 10}% of packets lost` : ''].filter(Boolean).join(', ')
      if (wrong) memory.streamDegraded = wrong
      else delete memory.streamDegraded
      // The usual bitrate follows a lasting change slowly (a camera set to a lower rate is degraded for hours, not for ever).
      if (thin && h.bitrateKbps !== undefined && before.bitrateKbps !== undefined) memory.bitrateKbps = before.bitrateKbps * 0.9 + h.bitrateKbps * 0.1
    }
    // What the pictures last showed stands until pictures show otherwise; what the stream last showed, until a window does.
    const tampering = memory.condition !== undefined && (TAMPERING.has(memory.condition.name) || memory.condition.moved === true)
    if (tampering && memory.condition) {
      state = 'tampered'
      detail = `${memory.condition.name}${memory.condition.moved ? ' (moved)' : ''}: ${event && verdict ? verdict.reason : 'as last checked'}`
    } else if (memory.streamDegraded) {
      state = 'degraded'
      detail = h ? memory.streamDegraded : `${memory.streamDegraded}, as last checked`
    } else {
      state = 'ok'
      detail = h ? `${h.fps ?? '?'} fps, ${h.bitrateKbps ?? '?'} kbit/s` : 'reachable'
      // A healthy window teaches the camera's usual bitrate (a quarter of each new one).
      if (h?.bitrateKbps !== undefined && (!verdict || verdict.condition === 'ok') && !thin) memory.bitrateKbps = before.bitrateKbps === undefined ? h.bitrateKbps : before.bitrateKbps * 0.75 + h.bitrateKbps * 0.25
    }
  }
  const due = before.status !== state || before.statusSentAt === undefined || nowMs - before.statusSentAt >= p.statusEveryS * 1000
  if (!due) return { events, memory }
  memory.status = state
  memory.statusSentAt = nowMs
  return { status: { state, detail, ...(failure ? { failure } : {}) }, events, memory }
}
