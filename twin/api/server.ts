// The HTTP API: health, Prometheus metrics, the OpenAPI document, the city's
// figures, and (when a live twin runs) the twin's routes and its live
// WebSocket feed. Routes are declared in a table (router.ts) that also
// validates requests, checks bearer tokens and generates the document.
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { ClickHouseClient } from '@clickhouse/client'
import { z } from 'zod'
import type { Component, ComponentStats, Health } from '../../lib/component.ts'
import { messageOf } from '../../lib/errors.ts'
import { closeServer, listen, listenOnPath } from '../../lib/http/listen.ts'
import { logger } from '../../lib/log.ts'
import { metricsText } from '../../lib/metrics.ts'
import { readCityFigures } from '../../registry/city-store.ts'
import type { LiveTwin } from '../state/live-twin.ts'
import type { ApiConfig } from './config.ts'
import { LiveFeed } from './live.ts'
import { authorize, errorBody, HttpError, openApiFor, parseOr400, queryObject, readJsonBody, route, Router, type Caller, type Reply, type Route } from '../../lib/http/router.ts'
import { cors, refuseUpgrade, send, setSecurityHeaders } from '../../lib/http/respond.ts'
import { AuditTrail } from './audit.ts'
import { CallerCheck } from './caller.ts'
import { ApiFront, flushFrontCounts } from './front/front.ts'
import { CALLER_HEADER, decodeCaller, PEER_HEADER } from './front/protocol.ts'
import { authFailures, httpRequests } from './metrics.ts'
import { twinRoutes } from './twin-routes.ts'
import { mapRoutes } from './map-routes.ts'
import { deviceAdminRoutes } from './device-admin-routes.ts'
import { cameraAdminRoutes } from './camera-admin-routes.ts'
import { Provisioner } from '../../registry/provision.ts'
import { isApiPath, serveStatic } from './static.ts'

const log = logger('api')
export interface ApiServerOptions {
  config: ApiConfig
  client: ClickHouseClient
  components?: () => readonly Component[]
  /** The live twin; without it only the system routes are served. */
  twin?: LiveTwin
  /** More routes, from the stages after the twin (the rules' tickets, modes and Open311). */
  routes?: readonly Route[]
  /** The viewer's built files, served at / (everything that is not an API path). */
  staticDir?: string
  /** The device secret, so a credential rotation can answer with the new token (mqtt.deviceSecret or the data directory's). */
  deviceSecret?: string
}

export class ApiServer implements Component {
  readonly name = 'api'
  #server: Server | undefined
  /** The API's own thread, which holds the port when api.readThread is on (front/thread.ts); this server then listens on a Unix socket only it reaches. */
  #front: ApiFront | undefined
  #socketDir: string | undefined
  #live: LiveFeed | undefined
  #served = 0
  #errors = 0
  readonly #cfg: ApiConfig
  readonly #client: ClickHouseClient
  readonly #components: () => readonly Component[]
  readonly #twin: LiveTwin | undefined
  readonly #staticDir: string | undefined
  readonly #check: CallerCheck
  readonly #audit: AuditTrail
  readonly router: Router

  constructor(opts: ApiServerOptions) {
    this.#cfg = opts.config
    this.#client = opts.client
    this.#components = opts.components ?? (() => [])
    this.#twin = opts.twin
    this.#staticDir = opts.staticDir
    this.#check = new CallerCheck({ tokens: this.#cfg.tokens, authFailuresPerMinute: this.#cfg.authFailuresPerMinute, onFailure: (outcome) => authFailures.inc({ outcome }) })
    this.#audit = new AuditTrail(opts.client)
    const system: Route[] = [
      route({
        method: 'GET', path: '/api/audit', tag: 'system', role: 'admin',
        summary: 'The audit trail: every change made through the API (and every refused attempt), who, from where, on what, newest first',
        query: z.strictObject({
          from: z.coerce.number().int().min(0).optional().describe('Epoch ms; default a day before `to`.'),
          to: z.coerce.number().int().min(0).optional().describe('Epoch ms; default now.'),
          actor: z.string().max(200).optional().describe('Only this token name.'),
          limit: z.coerce.number().int().min(1).max(10_000).default(500),
        }),
        handler: async ({ query }) => {
          const to = query.to ?? Date.now() + 1
          return { status: 200, body: { items: await this.#audit.list({ from: query.from ?? to - 86_400_000, to, actor: query.actor, limit: query.limit }) } }
        },
      }),
      route({
        method: 'GET', path: '/metrics', tag: 'system', summary: 'Prometheus metrics (text exposition format)',
        handler: async () => {
          // What the API thread answered counts too.
          await flushFrontCounts()
          const m = await metricsText()
          return { status: 200, body: m.body, contentType: m.contentType }
        },
      }),
      route({ method: 'GET', path: '/healthz', tag: 'system', open: true, summary: 'Health of the store and of every component (503 when one is unhealthy); open to probes without a token', handler: () => this.#healthz() }),
      route({
        method: 'GET', path: '/api/me', tag: 'system', role: 'viewer', summary: 'Who the bearer token names: its name and role (the viewer shows operator and admin controls by it)',
        handler: ({ caller }) => ({ status: 200, body: { name: caller?.name ?? '', role: caller?.role ?? 'viewer' } }),
      }),
      route({
        method: 'GET', path: '/api/map/config', tag: 'map', summary: 'What the viewer needs to know of this deployment: the base map\'s MapLibre style URL, if any',
        handler: () => ({ status: 200, body: { basemapStyleUrl: this.#cfg.basemapStyleUrl } }),
      }),
      route({ method: 'GET', path: '/openapi.json', tag: 'system', summary: 'This document', handler: () => ({ status: 200, body: this.openApi() }) }),
      route({ method: 'GET', path: '/api/openapi.json', tag: 'system', summary: 'This document', handler: () => ({ status: 200, body: this.openApi() }) }),
      route({
        method: 'GET', path: '/api/v1/city', tag: 'system', summary: 'Figures of the city in the store: grids per level, devices per type, cameras',
        handler: async () => ({ status: 200, body: await readCityFigures(this.#client) }),
      }),
    ]
    // One for the devices' and the cameras' routes: it makes one change at a time.
    const provisioner = new Provisioner({ client: opts.client })
    this.router = new Router([...system, ...(opts.twin ? [...twinRoutes(opts.twin, opts.client), ...mapRoutes(opts.twin, opts.client), ...deviceAdminRoutes(opts.twin, opts.client, provisioner, opts.deviceSecret), ...cameraAdminRoutes(provisioner)] : []), ...(opts.routes ?? [])])
  }

  get url(): string {
    if (this.#front) return `http://${this.#cfg.host}:${this.#front.port}`
    const addr = this.#server?.address() as AddressInfo | null | undefined
    return addr && typeof addr === 'object' ? `http://${this.#cfg.host}:${addr.port}` : ''
  }

  openApi(): Record<string, unknown> {
    const live = this.#twin ? {
      '/api/live': { get: {
        summary: 'Live feed (WebSocket): send {"subscribe":{"level":"district"}}, {"subscribe":{"grids":[ids]}} or {"subscribe":{"bbox":[w,s,e,n]}}; receive coalesced deltas every tick',
        tags: ['twin'], 'x-live': true, responses: { 101: { description: 'Switching to the WebSocket protocol' }, 401: { description: 'A token is needed' }, 503: { description: 'Too many live clients' } },
      } },
    } : {}
    return openApiFor(this.router.routes, live)
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.#handle(req, res))
    const twin = this.#twin
    if (twin) {
      this.#live = new LiveFeed({ live: twin, tickMs: this.#cfg.liveTickMs, maxClients: this.#cfg.maxLiveClients, maxBoxes: this.#cfg.liveMaxBoxes, maxRowsPerMessage: this.#cfg.liveMaxRowsPerMessage })
      server.on('upgrade', (req, socket, head) => this.#upgrade(req, socket, head))
    }
    if (twin && this.#cfg.readThread) {
      // A directory only this user may enter: whoever reaches the socket is believed about the caller.
      const dir = mkdtempSync(join(tmpdir(), 'citytwin-api-'))
      const backend = join(dir, 'main.sock')
      try {
        await listenOnPath(server, backend)
        // Only the thread connects, and keeps its connections for the next request: one the server timed out
        // while the thread sent a request on it would fail that request.
        server.keepAliveTimeout = 0
        this.#server = server
        this.#front = await ApiFront.start({ config: this.#cfg, backend, staticDir: this.#staticDir, backendRoutes: this.router.routes.map((r) => [r.method, r.path]), twin })
      } catch (e) {
        this.#server = undefined
        await new Promise<void>((resolve) => server.close(() => resolve()))
        rmSync(dir, { recursive: true, force: true })
        throw e
      }
      this.#socketDir = dir
    } else {
      await listen(server, this.#cfg.port, this.#cfg.host)
      this.#server = server
    }
    log.info({ url: this.url, routes: this.router.routes.length, readThread: this.#front !== undefined }, 'API listening')
  }

  async stop(deadline: number): Promise<void> {
    const server = this.#server
    const front = this.#front
    this.#server = undefined
    this.#front = undefined
    // The live clients first (their sockets through the thread end with them), then the port: nothing new comes in,
    // and what the thread passed on is answered below.
    this.#live?.close()
    if (front) await front.stop(deadline)
    if (server) await closeServer(server, deadline)
    if (this.#socketDir) rmSync(this.#socketDir, { recursive: true, force: true })
    this.#socketDir = undefined
    await this.#audit.flush()
  }

  stats(): ComponentStats {
    return { url: this.url, served: this.#served, errors: this.#errors, liveClients: this.#live?.clients ?? 0, ...(this.#front ? { threadStarts: this.#front.starts } : {}) }
  }

  /**
   * The caller a request's bearer token names (CallerCheck); behind the
   * API thread, the one the thread found, which checked the token.
   */
  #caller(req: IncomingMessage, url: URL): Caller | undefined {
    if (!this.#socketDir) return this.#check.callerOf(req, url, this.#address(req))
    return decodeCaller(req.headers[CALLER_HEADER])
  }

  /** The client's address: its socket's, or behind the API thread, the one the thread saw. */
  #address(req: IncomingMessage): string {
    const given = this.#socketDir ? req.headers[PEER_HEADER] : undefined
    return typeof given === 'string' ? given : (req.socket.remoteAddress ?? '')
  }

  /** Stores the audit rows that wait (they go in batches of a second); for tests and a graceful stop. */
  flushAudit(): Promise<void> {
    return this.#audit.flush()
  }

  async #healthz(): Promise<Reply> {
    const checks: Record<string, Health> = {}
    const ping = await this.#client.ping()
    checks.store = ping.success ? { ok: true } : { ok: false, detail: messageOf(ping.error) }
    for (const c of this.#components()) if (c.health) checks[c.name] = await c.health()
    const ok = Object.values(checks).every((h) => h.ok)
    return { status: ok ? 200 : 503, body: { ok, checks } }
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://api')
    } catch {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n\r\nthe request target is not a valid URL\n')
      return
    }
    if (url.pathname !== '/api/live' || !this.#live) {
      socket.end('HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\n\r\nthe live feed is at /api/live\n')
      return
    }
    try {
      const caller = this.#caller(req, url)
      if (!this.#cfg.openReads && !caller) throw new HttpError(401, 'UNAUTHORIZED', 'the live feed needs a bearer token (Authorization header or access_token)')
    } catch (e) {
      refuseUpgrade(socket, e)
      return
    }
    this.#live.upgrade(req, socket, head)
  }

  /** One request; whatever it holds, it is answered and this process carries on. */
  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      setSecurityHeaders(res)
      if (cors(req, res, this.#cfg.corsOrigins)) return
      await this.#route(req, res)
    } catch (e) {
      // Only a fault outside a route's own handling lands here (the answer
      // could not be written, a URL Node let through that URL cannot parse).
      this.#errors++
      httpRequests.inc({ route: 'unhandled', status: '500' })
      log.error({ err: e, method: req.method, url: req.url?.slice(0, 200) }, 'request failed outside its route')
      if (!res.headersSent) send(res, errorBody(e))
      else res.destroy()
    }
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Read now: once the answer is sent the client may be gone, and with it the address.
    const address = this.#address(req)
    let url: URL
    let match: ReturnType<Router['match']>
    try {
      url = new URL(req.url ?? '/', 'http://api')
      match = this.router.match(req.method ?? 'GET', url.pathname)
    } catch (e) {
      // An HttpError from routing (a bad percent-escape), or URL refusing the target; anything else is ours (500, below).
      if (!(e instanceof HttpError) && !(e instanceof TypeError && (e as { code?: unknown }).code === 'ERR_INVALID_URL')) throw e
      const out = e instanceof HttpError ? errorBody(e) : errorBody(new HttpError(400, 'BAD_REQUEST', `the request target is not a valid URL: ${messageOf(e)}`))
      httpRequests.inc({ route: 'unmatched', status: String(out.status) })
      send(res, out)
      return
    }
    if (match === undefined && this.#staticDir !== undefined && (req.method === 'GET' || req.method === 'HEAD') && !isApiPath(url.pathname)) {
      const out = await serveStatic(this.#staticDir, url.pathname)
      httpRequests.inc({ route: 'viewer', status: String(out.status) })
      res.writeHead(out.status, { 'content-type': out.contentType ?? 'text/plain', 'cache-control': out.cache ?? 'no-cache' }).end(req.method === 'HEAD' ? undefined : out.body as Buffer | string)
      return
    }
    const label = typeof match === 'object' ? `${match.route.method} ${match.route.path}` : 'unmatched'
    let out: Reply
    let caller: Caller | undefined
    let body: unknown
    try {
      if (match === undefined) throw new HttpError(404, 'NOT_FOUND', `${req.method ?? 'GET'} ${url.pathname} is not a route of this API; see /api/openapi.json`)
      if (match === 'method') throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${url.pathname} does not take ${req.method ?? 'GET'}; see /api/openapi.json`)
      const { route: r, params } = match
      caller = this.#caller(req, url)
      authorize(r, caller, this.#cfg.openReads)
      const query = r.query ? parseOr400(r.query, queryObject(url), 'query') : undefined
      body = r.body ? parseOr400(r.body, await readJsonBody(req), 'body') : undefined
      out = await r.handler({ query, params, body, caller, req })
      this.#served++
    } catch (e) {
      out = errorBody(e)
      if (out.status >= 500) {
        this.#errors++
        log.error({ err: e, route: label }, 'request failed')
      }
    }
    httpRequests.inc({ route: label, status: String(out.status) })
    send(res, out)
    // What is kept: changes, and refusals of someone who showed a token (a wrong role, an unknown token, at most
    // api.authFailuresPerMinute a minute per address). Anonymous refusals and throttled requests are only counted
    // (citytwin_api_requests_total): stored one row each they would let anyone fill the store.
    const anonymousRefusal = caller === undefined && (out.status === 401 || out.status === 403) && req.headers.authorization === undefined && !url.searchParams.has('access_token')
    if (typeof match === 'object' && req.method !== 'GET' && req.method !== 'HEAD' && out.status !== 429 && !anonymousRefusal) {
      // Open311 posts carry a complainant's words and contact: not copied into the trail.
      this.#audit.record({
        ts: Date.now(), caller, ...(caller === undefined && match.route.ownAuth ? { actor: out.status < 400 ? 'open311-client' : 'open311-refused' } : {}), address,
        method: req.method ?? '', route: label, params: match.params, status: out.status, body: match.route.ownAuth ? undefined : body,
      })
    }
  }
}

