// The store owner. chDB lets one process open a data directory, so in
// embedded mode the process that opened it (normally `citytwin start`)
// serves it to the others: gateway workers, CLI commands run while the
// system is up. It speaks the subset of ClickHouse's HTTP interface that
// @clickhouse/client uses, on loopback only, behind a random token written
// to a 0600 file in the data directory. Other processes therefore use the
// very same client and SQL, just with a URL (see client.ts).
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ChdbPool } from './pool.ts'
import type { Component, ComponentStats } from '../lib/component.ts'
import { CitytwinError, messageOf } from '../lib/errors.ts'
import { closeServer, listen } from '../lib/http/listen.ts'
import { logger } from '../lib/log.ts'
import { counter } from '../lib/metrics.ts'
import { ownerFile, type OwnerInfo, type Store } from './client.ts'

const log = logger('store-owner')
const requests = counter('citytwin_store_owner_requests_total', 'Requests served by the embedded store owner to other processes', ['outcome'])

// Search parameters that are part of the protocol rather than settings.
const PROTOCOL_PARAMS = new Set(['query', 'query_id', 'database', 'session_id', 'role', 'default_format', 'user', 'password'])
// Settings that only make sense to an HTTP server; forwarding them as SET would fail in chDB.
const HTTP_ONLY = new Set(['wait_end_of_query', 'send_progress_in_http_headers', 'http_headers_progress_interval_ms', 'enable_http_compression', 'http_zlib_compression_level'])

export class StoreOwner implements Component {
  readonly name = 'store-owner'
  #server: Server | undefined
  #token = randomBytes(24).toString('hex')
  #served = 0
  #failed = 0
  #denied = 0
  readonly #store: Store
  readonly #chdb: ChdbPool
  readonly #host: string
  readonly #port: number
  readonly #cityHeldBy: string | undefined

  /** `cityHeldBy`: the command this process runs, when it holds the city in memory (OwnerInfo.cityHeldBy). */
  constructor(store: Store, opts: { host?: string; port?: number; cityHeldBy?: string } = {}) {
    if (store.mode !== 'embedded' || !store.chdb) throw new CitytwinError('INTERNAL', 'only the process that opened the embedded store can serve it')
    this.#store = store
    this.#chdb = store.chdb
    this.#host = opts.host ?? '127.0.0.1'
    this.#port = opts.port ?? 0
    this.#cityHeldBy = opts.cityHeldBy
  }

  get url(): string {
    const addr = this.#server?.address() as AddressInfo | null | undefined
    return addr ? `http://${this.#host}:${addr.port}` : ''
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.#handle(req, res))
    server.keepAliveTimeout = 10_000
    await listen(server, this.#port, this.#host)
    this.#server = server
    const info: OwnerInfo = { pid: process.pid, url: this.url, token: this.#token, database: this.#store.database, startedAt: new Date().toISOString(), ...(this.#cityHeldBy ? { cityHeldBy: this.#cityHeldBy } : {}) }
    writeFileSync(ownerFile(this.#store.dataDir), JSON.stringify(info, null, 2), { mode: 0o600 })
    log.info({ url: this.url, dataDir: this.#store.dataDir }, 'serving the embedded store to other processes')
  }

  async stop(deadline: number): Promise<void> {
    rmSync(ownerFile(this.#store.dataDir), { force: true })
    const server = this.#server
    this.#server = undefined
    if (server) await closeServer(server, deadline)
  }

  stats(): ComponentStats {
    return { url: this.url, served: this.#served, failed: this.#failed, denied: this.#denied }
  }

  #authorised(req: IncomingMessage, params: URLSearchParams): boolean {
    let key = req.headers['x-clickhouse-key']
    const auth = req.headers.authorization
    if (typeof key !== 'string' && auth?.startsWith('Basic ')) {
      const decoded = Buffer.from(auth.slice(6), 'base64').toString()
      key = decoded.slice(decoded.indexOf(':') + 1)
    }
    if (typeof key !== 'string') key = params.get('password') ?? ''
    const a = Buffer.from(key)
    const b = Buffer.from(this.#token)
    return a.length === b.length && timingSafeEqual(a, b)
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://owner')
    if (url.pathname === '/ping') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('Ok.\n')
      return
    }
    const params = url.searchParams
    if (!this.#authorised(req, params)) {
      this.#denied++
      requests.inc({ outcome: 'denied' })
      res.writeHead(403, { 'x-clickhouse-exception-code': '516' })
        .end('Code: 516. DB::Exception: citytwin store owner: wrong or missing token. (AUTHENTICATION_FAILED)\n')
      return
    }
    const database = params.get('database')
    if (database && database !== this.#store.database) {
      this.#fail(res, 81, 'UNKNOWN_DATABASE', `this store owner serves database ${this.#store.database}, not ${database}`)
      return
    }
    try {
      const body = await readBody(req)
      const inParams = params.get('query')
      const sql = inParams ?? body.toString('utf8')
      const query_params: Record<string, string> = {}
      const settings: Record<string, string> = {}
      for (const [k, v] of params) {
        if (k.startsWith('param_')) query_params[k.slice(6)] = bindableParam(sql, k.slice(6), v)
        else if (!PROTOCOL_PARAMS.has(k) && !HTTP_ONLY.has(k)) settings[k] = v
      }
      const base = { query_id: params.get('query_id') ?? undefined, query_params, clickhouse_settings: settings }
      // With `query` in the URL the body is data (an INSERT); otherwise the body is the statement.
      const result = inParams
        ? await this.#chdb.exec({ ...base, query: inParams, values: Readable.from([body]) })
        : await this.#chdb.exec({ ...base, query: sql })
      res.writeHead(200, {
        'content-type': 'text/plain; charset=UTF-8',
        'x-clickhouse-query-id': result.query_id,
        'x-clickhouse-summary': JSON.stringify(result.summary ?? {}),
      })
      await pipeline(result.stream, res)
      this.#served++
      requests.inc({ outcome: 'ok' })
    } catch (e) {
      const ch = e as { code?: string; type?: string }
      this.#fail(res, Number(ch.code ?? 1001), ch.type ?? 'STD_EXCEPTION', messageOf(e))
    }
  }

  #fail(res: ServerResponse, code: number, type: string, message: string): void {
    this.#failed++
    requests.inc({ outcome: 'error' })
    if (res.headersSent) {
      res.destroy(new Error(message))
      return
    }
    // The text ClickHouse itself sends, so the client's parseError yields the same ClickHouseError.
    res.writeHead(500, { 'content-type': 'text/plain; charset=UTF-8', 'x-clickhouse-exception-code': String(code) })
      .end(`Code: ${code}. DB::Exception: ${message.replace(/\s*\([A-Z0-9_]{3,}\)\s*$/, '')} (${type})\n`)
  }
}

/**
 * An HTTP query parameter arrives in ClickHouse's escaped text form; chDB's
 * binder escapes plain strings once more. So scalar text values are
 * unescaped first, and the binder's escaping restores them exactly. Composite
 * values (arrays, tuples, maps) pass as they are, which is exact unless they
 * hold a backslash: such a value is refused rather than bound wrongly.
 */
export function bindableParam(sql: string, name: string, value: string): string {
  const declared = new RegExp(`\\{\\s*${name.replace(/[^A-Za-z0-9_]/g, '')}\\s*:\\s*([^}]+)\\}`).exec(sql)?.[1]?.trim() ?? 'String'
  const scalar = !/^(Nullable\(|LowCardinality\()*(Array|Tuple|Map|Nested)\b/.test(declared)
  if (scalar) return value.replace(/\\(.)/gs, (_, c: string) => ESCAPES[c] ?? c)
  if (value.includes('\\')) {
    throw Object.assign(new Error(`query parameter ${name} of type ${declared} holds a backslash, which the embedded store owner cannot bind exactly`), { code: '48', type: 'NOT_IMPLEMENTED' })
  }
  return value
}

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', '0': '\0', '\\': '\\', "'": "'" }

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}
