import { z } from 'zod'
import { defineConfig } from '../../lib/config.ts'

export const apiConfig = defineConfig(
  'api',
  z.strictObject({
    host: z.string().default('127.0.0.1').describe('Address the HTTP API listens on. 0.0.0.0 to serve other machines.'),
    port: z.number().int().min(0).max(65_535).default(8080).describe('Port of the HTTP API, /metrics and (later) the viewer. 0 picks a free port.'),
  }),
)

export type ApiConfig = ReturnType<typeof apiConfig.schema.parse>
