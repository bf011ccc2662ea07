// The API from the browser: same origin as the page, the operator's bearer
// token (kept in this browser's localStorage) on every request when set.
const TOKEN_KEY = 'citytwin.token'

export function token(): string {
  return localStorage.getItem(TOKEN_KEY) ?? ''
}

export function setToken(t: string): void {
  if (t) localStorage.setItem(TOKEN_KEY, t)
  else localStorage.removeItem(TOKEN_KEY)
}

function headers(json: boolean): Record<string, string> {
  const h: Record<string, string> = json ? { 'content-type': 'application/json' } : {}
  const tk = token()
  if (tk) h.authorization = `Bearer ${tk}`
  return h
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message)
  }
}

async function check(res: Response): Promise<Response> {
  if (res.ok) return res
  let code = String(res.status)
  let message = res.statusText
  try {
    const body = (await res.json()) as { error?: { code: string; message: string } }
    code = body.error?.code ?? code
    message = body.error?.message ?? message
  } catch {
    // not JSON: the status says enough
  }
  throw new ApiError(res.status, code, message)
}

export async function getJson<T>(path: string): Promise<T> {
  return (await (await check(await fetch(path, { headers: headers(false) }))).json()) as T
}

export async function postJson<T>(path: string, body: unknown): Promise<T> {
  return (await (await check(await fetch(path, { method: 'POST', headers: headers(true), body: JSON.stringify(body) }))).json()) as T
}

export async function getBuffer(path: string): Promise<ArrayBuffer> {
  return (await check(await fetch(path, { headers: headers(false) }))).arrayBuffer()
}

export interface GridView {
  id: number
  level: string
  code: string
  name: string
  health: number
  devices: Record<string, number>
  cameras: Record<string, number>
  tickets: { info: number; warning: number; critical: number; total: number }
}

export interface TicketView {
  id: string
  status: string
  severity: 'info' | 'warning' | 'critical'
  type: string
  title: string
  unitName: string
  place: { lon: number; lat: number; microGridId: number; communityId: number }
  slaLeftMs: number | null
  actions: string[]
  occurrences: number
  supervised: boolean
  createdAt: number
}
