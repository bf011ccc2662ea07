// A small router over node:http: each route declares its method, path,
// query and body schemas (zod), the role it needs, and a handler. The same
// declarations validate requests (400 with the failing fields), check the
// bearer token (401/403), and generate the OpenAPI document, so the
// document cannot drift from the routes.
import type { IncomingMessage } from 'node:http'
import { z } from 'zod'
import { CitytwinError } from '../errors.ts'

export const ROLES = ['viewer', 'operator', 'admin'] as const
export type Role = (typeof ROLES)[number]

export interface Caller {
  name: string
  role: Role
}

export interface Reply {
  status: number
  body: unknown
  contentType?: string
  /** Seconds a client should wait before trying again (Retry-After), for 429 and 503. */
  retryAfterS?: number
}

export interface RouteContext<Q, B> {
  query: Q
  params: Record<string, string>
  body: B
  caller: Caller | undefined
  req: IncomingMessage
}

export interface Route<Q = unknown, B = unknown> {
  method: 'GET' | 'POST'
  /** e.g. /api/grids/{id} */
  path: string
  summary: string
  tag: string
  /** The least role that may call it; undefined: a read, open when the deployment allows anonymous reads. */
  role?: Role
  /** The handler checks the caller itself (Open311 takes an api_key instead of a bearer token). */
  ownAuth?: boolean
  /** Open to anyone whatever the deployment's reads: what probes and load balancers call without a token (/healthz). */
  open?: boolean
  query?: z.ZodType<Q>
  body?: z.ZodType<B>
  /** JSON schema of the 200 response, for the document. */
  response?: Record<string, unknown>
  handler: (ctx: RouteContext<Q, B>) => Promise<Reply> | Reply
}

/** Declares a route with its types inferred from its schemas. */
export function route<Q = undefined, B = undefined>(r: Route<Q, B>): Route {
  return r as unknown as Route
}

export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details?: unknown) {
    super(message)
  }
}

const rank = (r: Role): number => ROLES.indexOf(r)

interface Compiled {
  route: Route
  segments: string[]
}

export class Router {
  readonly routes: readonly Route[]
  readonly #compiled: Compiled[]

  constructor(routes: readonly Route[]) {
    this.routes = routes
    this.#compiled = routes.map((r) => ({ route: r, segments: r.path.split('/').slice(1) }))
  }

  /** The route for a method and path, with its path parameters; 'method' when only the method is wrong. */
  match(method: string, pathname: string): { route: Route; params: Record<string, string> } | 'method' | undefined {
    const parts = pathname.split('/').slice(1)
    let wrongMethod = false
    for (const c of this.#compiled) {
      if (c.segments.length !== parts.length) continue
      const params: Record<string, string> = {}
      let ok = true
      for (let i = 0; i < parts.length && ok; i++) {
        const seg = c.segments[i] ?? ''
        const part = parts[i] ?? ''
        if (seg.startsWith('{')) params[seg.slice(1, -1)] = decodePathPart(part)
        else ok = seg === part
      }
      if (!ok) continue
      if (c.route.method !== method) {
        wrongMethod = true
        continue
      }
      return { route: c.route, params }
    }
    return wrongMethod ? 'method' : undefined
  }
}

/** A path parameter, percent-decoded; a malformed escape (%ZZ) is the caller's 400, never an exception out of routing. */
function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    throw new HttpError(400, 'BAD_REQUEST', `path segment "${part.slice(0, 100)}" is not valid percent-encoding`)
  }
}

/** Parses with a schema, or throws a 400 naming each failing field. */
export function parseOr400<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const r = schema.safeParse(value)
  if (r.success) return r.data
  const issues = r.error.issues.map((i) => ({ field: [where, ...i.path.map(String)].join('.'), message: i.message }))
  throw new HttpError(400, 'BAD_REQUEST', issues.map((i) => `${i.field}: ${i.message}`).join('; '), issues)
}

/** Checks the caller against the route's role. */
export function authorize(route: Route, caller: Caller | undefined, openReads: boolean): void {
  if (route.ownAuth || route.open) return
  const needed: Role | undefined = route.role ?? (openReads ? undefined : 'viewer')
  if (!needed) return
  if (!caller) throw new HttpError(401, 'UNAUTHORIZED', `${route.method} ${route.path} needs a bearer token with the ${needed} role`)
  if (rank(caller.role) < rank(needed)) throw new HttpError(403, 'FORBIDDEN', `${caller.name} has the ${caller.role} role; ${route.method} ${route.path} needs ${needed}`)
}

/** Query strings: every value is a string; schemas coerce. Repeated keys keep the last value. */
export function queryObject(url: URL): Record<string, string> {
  return Object.fromEntries(url.searchParams.entries())
}

/**
 * A body past the limit is read on and dropped up to this many times the
 * limit, so its client gets its 413 rather than a reset connection (a
 * socket closed with unread data is reset); a larger one is cut off.
 */
const DRAIN_FACTOR = 16

export async function readJsonBody(req: IncomingMessage, maxBytes = 1 << 20): Promise<unknown> {
  const tooLarge = (): HttpError => new HttpError(413, 'PAYLOAD_TOO_LARGE', `the body is over ${maxBytes} bytes`)
  // Said to be larger than can be drained: refused before a byte is read (and the connection reset).
  if (Number(req.headers['content-length'] ?? 0) > DRAIN_FACTOR * maxBytes) throw tooLarge()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    const b = chunk as Buffer
    size += b.length
    if (size > DRAIN_FACTOR * maxBytes) throw tooLarge()
    if (size <= maxBytes) chunks.push(b)
  }
  if (size > maxBytes) throw tooLarge()
  if (size === 0) return undefined
  const text = Buffer.concat(chunks).toString('utf8')
  // Open311 clients post form fields (GeoReport v2); everything else is JSON.
  if ((req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(text))
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new HttpError(400, 'BAD_REQUEST', `the body is not JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/** The OpenAPI 3.1 document of a set of routes. */
export function openApiFor(routes: readonly Route[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  const errorSchema = { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} }, required: ['code', 'message'] } } }
  for (const r of routes) {
    const parameters: unknown[] = []
    for (const name of r.path.match(/\{(\w+)\}/g) ?? []) parameters.push({ name: name.slice(1, -1), in: 'path', required: true, schema: { type: 'string' } })
    if (r.query) {
      const js = z.toJSONSchema(r.query, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, Record<string, unknown>>; required?: string[] }
      for (const [name, schema] of Object.entries(js.properties ?? {})) {
        const { description, ...rest } = schema
        parameters.push({ name, in: 'query', required: js.required?.includes(name) ?? false, schema: rest, ...(typeof description === 'string' ? { description } : {}) })
      }
    }
    const responses: Record<string, unknown> = {
      200: { description: 'OK', content: { 'application/json': { schema: r.response ?? { type: 'object' } } } },
      400: { description: 'Invalid request', content: { 'application/json': { schema: errorSchema } } },
    }
    if (r.path.includes('{')) responses[404] = { description: 'Not found', content: { 'application/json': { schema: errorSchema } } }
    if (r.role) {
      responses[401] = { description: 'No or unknown bearer token', content: { 'application/json': { schema: errorSchema } } }
      responses[403] = { description: 'The token\'s role is not enough', content: { 'application/json': { schema: errorSchema } } }
    }
    const op: Record<string, unknown> = {
      summary: r.summary, tags: [r.tag], operationId: `${r.method.toLowerCase()}${r.path.replace(/[{}]/g, '').split('/').map((s) => s.charAt(0).toUpperCase() + s.slice(1)).join('')}`,
      parameters, responses,
      ...(r.role ? { security: [{ bearer: [] }], 'x-citytwin-role': r.role } : {}),
    }
    if (r.body) op.requestBody = { required: true, content: { 'application/json': { schema: z.toJSONSchema(r.body, { io: 'input', unrepresentable: 'any' }) } } }
    paths[r.path] = { ...paths[r.path], [r.method.toLowerCase()]: op }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'citytwin API', version: '0.1.0', description: 'Digital twin of the city: live state of every device, camera and grid, history, and (later) proactive tickets.' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An operator token configured by the deployment (api.tokens).' } } },
    paths: { ...paths, ...extra },
  }
}

export function errorBody(e: unknown): Reply {
  if (e instanceof HttpError) {
    const retryAfterS = (e.details as { retryAfterS?: unknown } | undefined)?.retryAfterS
    return {
      status: e.status, body: { error: { code: e.code, message: e.message, ...(e.details === undefined ? {} : { details: e.details }) } },
      ...(typeof retryAfterS === 'number' ? { retryAfterS } : {}),
    }
  }
  if (e instanceof CitytwinError && e.code === 'STORE_UNAVAILABLE') return { status: 503, body: { error: { code: e.code, message: e.message } } }
  return { status: 500, body: { error: { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) } } }
}
