// The API's own thread: it holds the API's port, answers the reads of the
// live twin (the city, grids, devices, cameras, the map's layers) and the
// viewer's files itself, and passes every other request to the main
// thread's server (proxy.ts). At full city the main thread applies 20,000
// elements a second and waits for a CPU behind thirteen gateway workers;
// a read queued behind that waited up to a second, while this thread,
// with almost nothing else to do, answers in milliseconds (docs/benchmarks.md).
//
// Tokens are checked here for every request, with one throttle of unknown
// tokens for the whole port; what is passed on carries the caller it named.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { parentPort, workerData, type MessagePort } from 'node:worker_threads'
import { messageOf } from '../../../lib/errors.ts'
import { closeServer, listen } from '../../../lib/http/listen.ts'
import { cors, refuseUpgrade, send, setSecurityHeaders } from '../../../lib/http/respond.ts'
import { authorize, errorBody, parseOr400, queryObject, Router, type Caller, type Reply, type Route } from '../../../lib/http/router.ts'
import { logger } from '../../../lib/log.ts'
import { CallerCheck } from '../caller.ts'
import { mapReadRoutes } from '../map-routes.ts'
import { isApiPath, serveStatic } from '../static.ts'
import { twinReadRoutes } from '../twin-routes.ts'
import { Backend } from './proxy.ts'
import { ANSWERS_KEPT, type Counts, type FromFront, type FrontData, type ToFront } from './protocol.ts'
import { TwinReader } from './reader.ts'

const log = logger('api-front')
const data = workerData as FrontData
const parent = parentPort
if (!parent) throw new Error('twin/api/front/thread.ts runs as a worker thread (front.ts starts it)')
const post = (m: FromFront): void => parent.postMessage(m)
const cfg = data.config

// What this thread answered, posted to the main thread's metrics once a second and whenever it asks (GET /metrics).
let requests = new Map<string, number>()
let authFailures = new Map<string, number>()
const bump = (m: Map<string, number>, k: string): void => {
  m.set(k, (m.get(k) ?? 0) + 1)
}
// How long each read answered here took, by route, until the next post.
let answers = new Map<string, number[]>()
const timed = (label: string, startedMs: number): void => {
  let kept = answers.get(label)
  if (!kept) answers.set(label, (kept = []))
  if (kept.length < ANSWERS_KEPT) kept.push((performance.now() - startedMs) / 1000)
}
const takeCounts = (): Counts => {
  const out: Counts = { requests: [...requests].map(([k, n]) => [...splitKey(k), n]), authFailures: [...authFailures], answers: [...answers] }
  requests = new Map()
  authFailures = new Map()
  answers = new Map()
  return out
}
const splitKey = (k: string): [string, string] => {
  const at = k.lastIndexOf('|')
  return [k.slice(0, at), k.slice(at + 1)]
}
const counted = (label: string, status: number): void => bump(requests, `${label}|${status}`)

const check = new CallerCheck({ tokens: cfg.tokens, authFailuresPerMinute: cfg.authFailuresPerMinute, onFailure: (o) => bump(authFailures, o) })
const reader = new TwinReader(data.twinPort as MessagePort, (devices, ms) => {
  log.info({ devices, ms }, 'the API thread reads the twin loaded')
  post({ type: 'twin-ready', devices, ms })
})
const router = new Router([...twinReadRoutes(reader), ...mapReadRoutes(reader)])
// The main thread's routes, to match only: their paths are passed on, never taken for the viewer's pages.
const passedOn = new Router(data.backendRoutes.map(([method, path]) => ({
  method: method as Route['method'], path, summary: '', tag: '', handler: () => Promise.reject(new Error('answered by the main thread')),
})))
const backend = new Backend(data.backend)

/** Whether the main thread has a route at this path (any method). */
function mainThreadPath(pathname: string): boolean {
  try {
    return passedOn.match('GET', pathname) !== undefined
  } catch {
    return true
  }
}

/** The caller, or the refusal to write (401, 429). */
function callerOrRefusal(req: IncomingMessage, url: URL, address: string): Caller | undefined | { refused: unknown } {
  try {
    return check.callerOf(req, url, address)
  } catch (e) {
    return { refused: e }
  }
}

const isRefusal = (c: Caller | undefined | { refused: unknown }): c is { refused: unknown } => c !== undefined && 'refused' in c

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  // From here: draining the twin's messages (reader.current) is part of an answer's time.
  const startedMs = performance.now()
  setSecurityHeaders(res)
  const address = req.socket.remoteAddress ?? ''
  let url: URL
  let match: ReturnType<Router['match']>
  try {
    url = new URL(req.url ?? '/', 'http://api')
    match = reader.current() ? router.match(req.method ?? 'GET', url.pathname) : undefined
  } catch {
    // A target the main thread answers 400 to, in its own words.
    backend.forward(req, res, undefined, address)
    return
  }
  if (typeof match === 'object') {
    if (cors(req, res, cfg.corsOrigins)) return
    const label = `${match.route.method} ${match.route.path}`
    let out: Reply
    try {
      const caller = check.callerOf(req, url, address)
      authorize(match.route, caller, cfg.openReads)
      const query = match.route.query ? parseOr400(match.route.query, queryObject(url), 'query') : undefined
      out = await match.route.handler({ query, params: match.params, body: undefined, caller, req })
    } catch (e) {
      out = errorBody(e)
      if (out.status >= 500) log.error({ err: e, route: label }, 'request failed')
    }
    counted(label, out.status)
    send(res, out)
    timed(label, startedMs)
    return
  }
  if (match === undefined && data.staticDir !== undefined && (req.method === 'GET' || req.method === 'HEAD') && !isApiPath(url.pathname) && !mainThreadPath(url.pathname)) {
    if (cors(req, res, cfg.corsOrigins)) return
    const out = await serveStatic(data.staticDir, url.pathname)
    counted('viewer', out.status)
    res.writeHead(out.status, { 'content-type': out.contentType ?? 'text/plain', 'cache-control': out.cache ?? 'no-cache' }).end(req.method === 'HEAD' ? undefined : out.body as Buffer | string)
    return
  }
  const caller = callerOrRefusal(req, url, address)
  if (isRefusal(caller)) {
    cors(req, res, cfg.corsOrigins)
    const out = errorBody(caller.refused)
    counted('token refused', out.status)
    send(res, out)
    return
  }
  backend.forward(req, res, caller, address)
}

function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const address = req.socket.remoteAddress ?? ''
  let caller: Caller | undefined
  try {
    const url = new URL(req.url ?? '/', 'http://api')
    const c = callerOrRefusal(req, url, address)
    if (isRefusal(c)) {
      refuseUpgrade(socket, c.refused)
      return
    }
    caller = c
  } catch {
    // A target the main thread refuses in its own words.
  }
  backend.upgrade(req, socket, head, caller, address)
}

const server = createServer((req, res) => {
  handle(req, res).catch((e: unknown) => {
    // Only a fault outside a route's own handling lands here.
    log.error({ err: e, method: req.method, url: req.url?.slice(0, 200) }, 'request failed outside its route')
    counted('unhandled', 500)
    if (!res.headersSent) send(res, errorBody(e))
    else res.destroy()
  })
})
server.on('upgrade', upgrade)

const countsTimer = setInterval(() => {
  if (requests.size > 0 || authFailures.size > 0) post({ type: 'counts', counts: takeCounts() })
}, 1_000)
countsTimer.unref()

parent.on('message', (m: ToFront) => {
  if (m.type === 'flush') post({ type: 'counts', counts: takeCounts(), flushed: m.id })
  else if (m.type === 'stop') void stop(m.deadline)
})

async function stop(deadline: number): Promise<void> {
  const closed = closeServer(server, deadline).catch((e: unknown) => log.warn({ err: messageOf(e) }, 'the API thread could not close its server cleanly'))
  backend.endLive()
  await closed
  backend.close()
  reader.close()
  clearInterval(countsTimer)
  post({ type: 'counts', counts: takeCounts() })
  post({ type: 'stopped' })
  parent?.close()
}

try {
  await listen(server, cfg.port, cfg.host)
  post({ type: 'listening', port: (server.address() as AddressInfo).port })
} catch (e) {
  post({ type: 'listen-failed', message: messageOf(e), code: (e as NodeJS.ErrnoException).code })
  reader.close()
  parent.close()
}
