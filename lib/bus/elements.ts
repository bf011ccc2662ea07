// The element records that travel on the bus from the gateways to the twin
// and the rules. They are the normalised form of what a device or camera
// said, after it was validated and stored: a reading becomes a row in the
// store and, at the same time, an element here.
export type Severity = 'info' | 'warning' | 'critical'
export const SEVERITIES: readonly Severity[] = ['info', 'warning', 'critical']

/** Ticket statuses in which a ticket no longer counts as open (the work is done and checked). */
export const DONE_TICKET_STATUSES = ['verified', 'closed'] as const

/** A camera's state from the camera gateway (ingest/rtsp/camera-state.ts): tampered is a picture blacked out, frozen, obstructed or turned away. The one list of them: the twin counts these and 'unknown'. */
export const CAMERA_STATUS_VALUES = ['ok', 'offline', 'degraded', 'tampered'] as const
export type CameraStatus = (typeof CAMERA_STATUS_VALUES)[number]

/**
 * Where the store holds a reading or device event: the bus position of the
 * write that stored it (lib/bus/position.ts). Absent where nothing keeps
 * positions (elements made by tests, the camera gateway).
 */
interface Stored {
  pos?: number
}

export type Element =
  /**
   * One telemetry sample of a device: every metric it reported at `ts` (the
   * device's clock). `receivedAt`: when the gateway took it (the gateway's
   * clock), by which the twin judges whether the device is alive and how
   * late the data is; a device's clock may be minutes off. Absent where
   * unknown (elements made by tests): `ts` stands for it.
   */
  | ({ kind: 'reading'; deviceId: string; ts: number; values: Record<string, number>; receivedAt?: number } & Stored)
  /** A device connected or disconnected (cleanly, or its connection was lost). */
  | ({ kind: 'connectivity'; deviceId: string; ts: number; state: 'connected' | 'disconnected' } & Stored)
  /** Something a device reported on its events or status topic. */
  | ({ kind: 'device-event'; deviceId: string; ts: number; name: string; severity: Severity } & Stored)
  /** A camera's reachability and stream health, from the camera gateway. */
  | { kind: 'camera-status'; cameraId: string; ts: number; status: CameraStatus }
  /** Something a camera gateway derived from a camera's frames (black, frozen, obstructed, scene change, motion); `snapshot`: the API path of the picture it was seen in. */
  | { kind: 'camera-event'; cameraId: string; ts: number; name: string; severity: Severity; snapshot?: string }
  /** A ticket opened or closed, about a device, a camera or a grid. */
  | { kind: 'ticket'; ticketId: string; ts: number; open: boolean; severity: Severity; deviceId?: string; cameraId?: string; gridId?: number }

export type ElementKind = Element['kind']
export type TicketElement = Extract<Element, { kind: 'ticket' }>
