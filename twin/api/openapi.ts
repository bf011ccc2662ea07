// The OpenAPI 3.1 document of the HTTP API, served at /openapi.json.
export function openApiDocument(): Record<string, unknown> {
  const json = (schema: Record<string, unknown>) => ({ content: { 'application/json': { schema } } })
  const error = json({ type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } } })
  return {
    openapi: '3.1.0',
    info: { title: 'citytwin API', version: '0.1.0', description: 'Digital twin of the city: live state, proactive tickets and their map.' },
    paths: {
      '/healthz': { get: { summary: 'Health of the store and of every component', responses: {
        200: { description: 'healthy', ...json({ type: 'object', properties: { ok: { type: 'boolean' }, checks: { type: 'object' } } }) },
        503: { description: 'a component is unhealthy' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format', content: { 'text/plain': {} } } } } },
      '/api/v1/city': { get: { summary: 'Figures of the city in the store: grids per level, devices per type, cameras', responses: {
        200: { description: 'figures', ...json({ type: 'object', properties: {
          seed: { type: ['integer', 'null'] }, grids: { type: 'object', additionalProperties: { type: 'integer' } },
          devices: { type: 'integer' }, devicesByType: { type: 'object', additionalProperties: { type: 'integer' } }, cameras: { type: 'integer' } } }) },
        500: { description: 'the store failed', ...error } } } },
    },
  }
}
