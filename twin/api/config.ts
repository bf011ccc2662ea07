import { z } from 'zod'
import { defineConfig } from '../../lib/config.ts'
import { ROLES } from '../../lib/http/router.ts'

export const apiConfig = defineConfig(
  'api',
  z.strictObject({
    host: z.string().default('127.0.0.1').describe('Address the HTTP API listens on. 0.0.0.0 to serve other machines.'),
    port: z.number().int().min(0).max(65_535).default(8080).describe('Port of the HTTP API, the live WebSocket (/api/live), /metrics and the viewer. 0 picks a free port.'),
    tokens: z.array(z.strictObject({
      name: z.string().min(1).describe('Who holds the token (shown in logs and the audit trail).'),
      role: z.enum(ROLES),
      token: z.string().min(16).optional().describe('The bearer secret, at least 16 characters.'),
      sha256: z.string().regex(/^[0-9a-f]{64}$/, 'the SHA-256 of the token: 64 lower-case hexadecimal digits').optional().describe('Instead of the token, its SHA-256 (citytwin api-token new prints it): the configuration then holds no working secret.'),
    }).refine((t) => (t.token === undefined) !== (t.sha256 === undefined), 'give either token or sha256, not both')).default([])
      .describe('Bearer tokens and their roles (viewer < operator < admin). JSON in the environment, e.g. [{"name":"desk-1","role":"operator","sha256":"..."}]; `citytwin api-token new` makes one.'),
    openReads: z.boolean().default(false).describe('Whether read-only routes (and the live feed) may be used without a token. Anything that changes state always needs one, and complainants\' words and places (Open311 requests) need a token or an api_key either way. Off by default; `citytwin start` with the demo city turns it on unless set, so a newcomer\'s viewer works without a token.'),
    authFailuresPerMinute: z.number().int().min(1).default(20).describe('Unknown bearer tokens one client address may send in a minute; after that its requests (and live connections) are answered 429 until the minute is over. Slows the guessing of tokens; a client with a good token is not affected unless it shares the address.'),
    corsOrigins: z.array(z.string().min(1)).default([]).describe('Web origins (e.g. "https://ops.example.city") whose pages may call this API from a browser (CORS). Empty: only the viewer served here, from the same origin. "*" allows any origin; the API takes bearer tokens, not cookies, so a page elsewhere still needs a token to change anything.'),
    liveTickMs: z.number().int().min(50).max(10_000).default(250).describe('How often the live WebSocket sends what changed, coalesced per device, camera and grid, in milliseconds.'),
    basemapStyleUrl: z.string().default('').refine((u) => u === '' || /^https?:\/\//.test(u) || u.startsWith('/'), 'an http(s) URL or a path on this server').describe('A MapLibre style URL (style.json) the viewer draws under the grids, for deployments with a tile server. Empty: no base map; the city\'s own district outlines are the base, and nothing is fetched from outside.'),
    maxLiveClients: z.number().int().min(1).default(200).describe('Most live WebSocket clients at once; more are refused.'),
    liveMaxBoxes: z.number().int().min(1).max(1_000).default(16).describe('Most bounding boxes one live client may subscribe to at once; one more is refused with an error message (unsubscribe first). Each box is checked against every changed device on every tick.'),
    readThread: z.boolean().default(true).describe('Whether a thread of its own holds the API\'s port and answers the reads of the live twin (/api/city, grids, devices, cameras, the map\'s layers) and the viewer\'s files, passing every other request to the main thread. At full city the main thread is busy applying readings, and a read queued behind it waited up to a second; the thread answers in milliseconds. Off: the main thread serves everything.'),
    liveMaxRowsPerMessage: z.number().int().min(100).default(5_000).describe('Most rows (grids, devices and cameras) in one live message. A subscription larger than that (a box over the whole city: 349,300 devices and cameras) is sent over several ticks, instead of as one message of tens of megabytes built in one turn of the event loop.'),
  }),
  { tokens: ['CITYTWIN_API_TOKENS'] },
)

export type ApiConfig = ReturnType<typeof apiConfig.schema.parse>
