// The HTTP API: health, Prometheus metrics, the OpenAPI document and the
// city's figures. Later stages add routes (tickets, Open311, the viewer).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ClickHouseClient } from '@clickhouse/client'
import type { Component, ComponentStats, Health } from '../../lib/component.ts'
import { messageOf } from '../../lib/errors.ts'
import { closeServer, listen } from '../../lib/http.ts'
import { logger } from '../../lib/log.ts'
import { counter, metricsText } from '../../lib/metrics.ts'
import { readCityFigures } from '../../simulators/city/store.ts'
import type { ApiConfig } from './config.ts'
import { openApiDocument } from './openapi.ts'

const log = logger('api')
const httpRequests = counter('citytwin_api_requests_total', 'HTTP API requests, by route and status', ['route', 'status'])

type Handler = (req: IncomingMessage, url: URL) => Promise<{ status: number; body: unknown; contentType?: string }>

export class ApiServer implements Component {
  readonly name = 'api'
  #server: Server | undefined
  #served = 0
  #errors = 0
  readonly #cfg: ApiConfig
  readonly #client: ClickHouseClient
  readonly #components: () => readonly Component[]
  readonly #routes: Map<string, Handler>

  constructor(opts: { config: ApiConfig; client: ClickHouseClient; components?: () => readonly Component[] }) {
    this.#cfg = opts.config
    this.#client = opts.client
    this.#components = opts.components ?? (() => [])
    this.#routes = new Map<string, Handler>([
      ['GET /metrics', async () => {
        const m = await metricsText()
        return { status: 200, body: m.body, contentType: m.contentType }
      }],
      ['GET /healthz', () => this.#healthz()],
      ['GET /openapi.json', () => Promise.resolve({ status: 200, body: openApiDocument() })],
      ['GET /api/v1/city', async () => ({ status: 200, body: await readCityFigures(this.#client) })],
    ])
  }

  get url(): string {
    const addr = this.#server?.address() as AddressInfo | null | undefined
    return addr ? `http://${this.#cfg.host}:${addr.port}` : ''
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.#handle(req, res))
    await listen(server, this.#cfg.port, this.#cfg.host)
    this.#server = server
    log.info({ url: this.url }, 'API listening')
  }

  async stop(deadline: number): Promise<void> {
    const server = this.#server
    this.#server = undefined
    if (server) await closeServer(server, deadline)
  }

  stats(): ComponentStats {
    return { url: this.url, served: this.#served, errors: this.#errors }
  }

  async #healthz(): Promise<{ status: number; body: unknown }> {
    const checks: Record<string, Health> = {}
    const ping = await this.#client.ping()
    checks.store = ping.success ? { ok: true } : { ok: false, detail: messageOf(ping.error) }
    for (const c of this.#components()) if (c.health) checks[c.name] = await c.health()
    const ok = Object.values(checks).every((h) => h.ok)
    return { status: ok ? 200 : 503, body: { ok, checks } }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://api')
    const route = `${req.method ?? 'GET'} ${url.pathname}`
    const handler = this.#routes.get(route)
    let status = 500
    try {
      if (!handler) {
        const known = [...this.#routes.keys()].some((r) => r.endsWith(` ${url.pathname}`))
        status = known ? 405 : 404
        send(res, status, { error: { code: known ? 'METHOD_NOT_ALLOWED' : 'NOT_FOUND', message: `${route} is not a route of this API; see /openapi.json` } })
        return
      }
      const out = await handler(req, url)
      status = out.status
      send(res, status, out.body, out.contentType)
      this.#served++
    } catch (e) {
      this.#errors++
      log.error({ err: e, route }, 'request failed')
      status = 500
      if (!res.headersSent) send(res, 500, { error: { code: 'INTERNAL', message: messageOf(e) } })
    } finally {
      httpRequests.inc({ route: handler ? route : 'unmatched', status: String(status) })
    }
  }
}

function send(res: ServerResponse, status: number, body: unknown, contentType?: string): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  res.writeHead(status, { 'content-type': contentType ?? 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(text)
}
