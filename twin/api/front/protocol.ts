// What the main thread and the API's thread (thread.ts) say to each other.
//
// Main -> thread, on the twin port (drained before every answer, so a
// request sent after the main thread changed the twin is answered from the
// change): the twin each time one is loaded, ingest's state after each
// sweep. Main -> thread on the worker itself: flush the counts, stop.
// Thread -> main: listening (or why not), counts of what it answered,
// stopped.
import { ROLES, type Caller } from '../../../lib/http/router.ts'
import type { ApiConfig } from '../config.ts'
import type { IngestHealth } from '../../state/ingest-health.ts'
import type { TwinShare } from '../../state/twin.ts'

/** What the thread is started with (workerData). */
export interface FrontData {
  config: ApiConfig
  /** The main thread's server, a Unix socket in a directory only this user reads: every request the thread does not answer goes there. */
  backend: string
  staticDir: string | undefined
  /** The main thread's routes, [method, path]: a path of one of them is passed on, never taken for a viewer's page. */
  backendRoutes: [string, string][]
  /** The port on which the main thread sends the twin (a MessagePort, transferred). */
  twinPort: unknown
}

export type TwinMessage =
  | { type: 'twin'; share: TwinShare; ingest: IngestHealth }
  | { type: 'ingest'; ingest: IngestHealth }

export type ToFront =
  | { type: 'flush'; id: number }
  | { type: 'stop'; deadline: number }

/** Requests answered and tokens refused since the last counts: [route label, status, n] and [outcome, n]. */
export interface Counts {
  requests: [string, string, number][]
  authFailures: [string, number][]
  /** How long the thread took over the reads it answered itself, in seconds, by route label (at most ANSWERS_KEPT a route between two posts). */
  answers: [string, number[]][]
}

/** Answer times a route keeps between two posts of the counts (one a second): beyond that they are counted, not timed. */
export const ANSWERS_KEPT = 2_000

export type FromFront =
  | { type: 'listening'; port: number }
  | { type: 'listen-failed'; message: string; code: string | undefined }
  | { type: 'counts'; counts: Counts; flushed?: number }
  | { type: 'twin-ready'; devices: number; ms: number }
  | { type: 'stopped' }

/** Headers only the thread may set on what it passes on: the caller its token named, and the client's address. Stripped from every client's request. */
export const CALLER_HEADER = 'x-citytwin-caller'

/** The caller as CALLER_HEADER carries it: its role, a space, its name percent-encoded. */
export function encodeCaller(c: Caller): string {
  return `${c.role} ${encodeURIComponent(c.name)}`
}

/** The caller CALLER_HEADER names; undefined for none or a role this API does not have. */
export function decodeCaller(given: string | string[] | undefined): Caller | undefined {
  if (typeof given !== 'string') return undefined
  const at = given.indexOf(' ')
  const role = ROLES.find((r) => r === given.slice(0, at))
  return role ? { role, name: decodeURIComponent(given.slice(at + 1)) } : undefined
}
export const PEER_HEADER = 'x-citytwin-peer'
