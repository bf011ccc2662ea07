// Every route of the API, fuzzed from its own OpenAPI document: hostile path
// parameters, query values and bodies, with and without a token. Whatever
// is sent, the answer is a clear 4xx (never a 5xx), injection strings reach
// the store only as bound parameters (a string spliced into SQL would fail
// there as a 500), and the process goes on answering.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../lib/config.ts'
import { rulesConfig } from '../../rules/config.ts'
import { SHIPPED_RULES_DIR } from '../../rules/loader.ts'
import type { RulesService } from '../../rules/service.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import type { ApiServer } from '../../twin/api/server.ts'
import { openSystem, startApi, startRules, type TestSystem } from '../system.ts'

const ADMIN = 'fuzz-admin-token-0123456789'
let sys: TestSystem
let rules: RulesService
let api: ApiServer

beforeAll(async () => {
  sys = await openSystem(generateCity({ seed: 21, scale: 0.01 }), { sweepIntervalMs: 3_600_000 })
  rules = await startRules(sys, loadConfig(rulesConfig, { env: {}, overrides: { dir: SHIPPED_RULES_DIR, tickMs: 3_600_000 } }))
  api = await startApi(sys, rules, { openReads: false, tokens: [{ name: 'fuzz', role: 'admin', token: ADMIN }] })
})

afterAll(async () => {
  await api?.stop(Date.now() + 2_000)
  await rules?.stop()
  await sys?.close()
})

/** Values an attacker or a broken integrator sends. */
const HOSTILE = [
  '', 'x', '-1', '0', '1e309', 'NaN', '[]', '{"a":1}', 'null', 'true',
  "' OR 1=1 --", "'); DROP TABLE readings; --", '{x:String}', '\\', '%00', '%ZZ', '%E0%A4%A', '../../etc/passwd',
  '😀', '\u0000', 'a'.repeat(5_000), '9'.repeat(40), '2026-13-45T99:99:99Z',
]

interface Operation { parameters?: { name: string; in: 'path' | 'query' }[]; requestBody?: unknown }

describe('every API route, fuzzed from the OpenAPI document', () => {
  it('answers hostile paths, queries and bodies with a 4xx, and stays up', async () => {
    const doc = (await (await fetch(`${api.url}/api/openapi.json`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { paths: Record<string, Record<string, Operation>> }
    const failures: string[] = []
    let sent = 0
    const call = async (method: string, path: string, body?: string, token = true): Promise<void> => {
      sent++
      const headers: Record<string, string> = token ? { authorization: `Bearer ${ADMIN}` } : {}
      if (body !== undefined) headers['content-type'] = 'application/json'
      const res = await fetch(`${api.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) })
      const text = await res.text()
      if (res.status >= 500) failures.push(`${method} ${path.slice(0, 120)} ${body === undefined ? '' : `body ${body.slice(0, 60)}`} -> ${res.status} ${text.slice(0, 200)}`)
    }
    for (const [template, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const verb = method.toUpperCase()
        const params = op.parameters ?? []
        const pathParams = params.filter((p) => p.in === 'path')
        const queryParams = params.filter((p) => p.in === 'query')
        // POST routes that take no body act at once (a rebuild, a reload): once each is enough.
        if (verb === 'POST' && op.requestBody === undefined) {
          await call(verb, template.replace(/\{(\w+)\}/g, 'x'))
          continue
        }
        for (const v of HOSTILE) {
          const path = template.replace(/\{(\w+)\}/g, () => (v.startsWith('%') ? v : encodeURIComponent(v)))
          if (verb === 'GET') {
            if (pathParams.length > 0) await call(verb, path)
            const q = new URLSearchParams(Object.fromEntries(queryParams.map((p) => [p.name, v]))).toString()
            if (queryParams.length > 0) await call(verb, `${template.replace(/\{(\w+)\}/g, 'x')}?${q}`)
          } else {
            await call(verb, template.replace(/\{(\w+)\}/g, 'x'), v)
            await call(verb, template.replace(/\{(\w+)\}/g, 'x'), JSON.stringify(Object.fromEntries(['action', 'mode', 'kind', 'district', 'reason', 'comment', 'by', 'until'].map((k) => [k, v]))))
          }
        }
        if (verb === 'POST') {
          await call(verb, template.replace(/\{(\w+)\}/g, 'x'), 'x'.repeat(2 * 2 ** 20))
          await call(verb, template.replace(/\{(\w+)\}/g, 'x'), '{"a":', false)
        }
      }
    }
    // Open311 checks its own callers and parses its own query and form fields (no schema in the document): fuzzed here.
    for (const v of HOSTILE) {
      for (const key of ['service_request_id', 'service_code', 'start_date', 'end_date', 'status', 'api_key']) {
        await call('GET', `/open311/v2/requests.json?${new URLSearchParams({ [key]: v }).toString()}`, undefined, false)
      }
      await call('GET', `/open311/v2/requests/${v.startsWith('%') ? v : encodeURIComponent(v)}.json?api_key=${encodeURIComponent(v)}`, undefined, false)
      await call('GET', `/open311/v2/services/${v.startsWith('%') ? v : encodeURIComponent(v)}.json`, undefined, false)
      sent++
      const form = new URLSearchParams({ api_key: v, service_code: v, lat: v, long: v, description: v, address_string: v, email: v }).toString()
      const res = await fetch(`${api.url}/open311/v2/requests.json`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form })
      if (res.status >= 500) failures.push(`POST open311 form ${form.slice(0, 80)} -> ${res.status} ${(await res.text()).slice(0, 200)}`)
      else await res.text()
    }
    expect(failures).toEqual([])
    expect(sent).toBeGreaterThan(300)
    // Headers past Node's limit are refused by the server itself, and it carries on.
    const huge = await fetch(`${api.url}/api/city`, { headers: { authorization: `Bearer ${ADMIN}`, 'x-padding': 'p'.repeat(64 * 1024) } }).then((r) => r.status, () => 0)
    expect([0, 431]).toContain(huge)
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200)
  })
})
