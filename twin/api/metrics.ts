// The API's request and token metrics: counted in the main thread for what
// it answers, and added from the API thread's counts (front/front.ts).
import { counter, histogram } from '../../lib/metrics.ts'

export const httpRequests = counter('citytwin_api_requests_total', 'HTTP API requests, by route and status', ['route', 'status'])
export const authFailures = counter('citytwin_api_auth_failures_total', 'Requests and live connections with an unknown bearer token, and those refused because their address sent too many', ['outcome'])
export const apiAnswerSeconds = histogram('citytwin_api_answer_seconds', 'Time the API\'s own thread took over a read it answers itself (the live twin and the map), from the request to the response handed to the socket, by route: what a caller waits beyond the network and the thread\'s wait for a CPU', ['route'], [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5])
