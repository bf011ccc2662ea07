// The API's request and token metrics: counted in the main thread for what
// it answers, and added from the API thread's counts (front/front.ts).
import { counter } from '../../lib/metrics.ts'

export const httpRequests = counter('citytwin_api_requests_total', 'HTTP API requests, by route and status', ['route', 'status'])
export const authFailures = counter('citytwin_api_auth_failures_total', 'Requests and live connections with an unknown bearer token, and those refused because their address sent too many', ['outcome'])
