// `citytwin device-token`, `citytwin devices list` and `citytwin gateway mqtt`.
import type { ClickHouseClient } from '@clickhouse/client'
import cluster from 'node:cluster'
import type { Command } from '../../lib/command.ts'
import { cliActor, numberOption, UsageError } from '../../lib/command.ts'
import { startAll, stopAll, type Component } from '../../lib/component.ts'
import { CitytwinError } from '../../lib/errors.ts'
import { loadConfig } from '../../lib/config.ts'
import { logger } from '../../lib/log.ts'
import { answerMetricsAsks } from '../../lib/metrics.ts'
import { openMigratedStore, StoreOwner, withStore, type StoreSetup } from '../../store/index.ts'
import { lowerWorkerThreads, MqttCluster, workerLimits } from './cluster.ts'
import { mqttConfig } from './config.ts'
import { listDenials, setDenial } from './deny-list.ts'
import { deviceTopics } from './devices.ts'
import { createMqttIngest } from './index.ts'
import { workerSlot } from './worker-slot.ts'
import { guardUnhandledRejections } from '../../lib/process-guard.ts'
import { deviceToken, resolveDeviceSecret } from './tokens.ts'
import { Provisioner } from '../../registry/provision.ts'
import { CURRENT_DEVICES } from '../../registry/city-store.ts'

const log = logger('mqtt-cli')

/** Resolves on SIGINT or SIGTERM. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'))
    process.once('SIGTERM', () => resolve('SIGTERM'))
  })
}

export const mqttCommands: Command[] = [
  {
    name: 'device-token',
    summary: 'Print the MQTT password of a device (derived from the deployment secret)',
    args: '<deviceId>',
    async run({ positionals, configFile, stdout }) {
      const id = positionals[0]
      if (!id || positionals.length > 1) throw new UsageError('give one device id, e.g. citytwin device-token D0000001')
      return withStore({ file: configFile }, async ({ store, storeCfg }) => {
        const device = await new Provisioner({ client: store.client }).get(id)
        if (!device) throw new CitytwinError('AUTH_DENIED', `no device ${id} in the city (see citytwin devices list)`)
        const cfg = loadConfig(mqttConfig, { file: configFile })
        // The token of its current credentials: rotated ones are a version on.
        stdout.write(deviceToken(resolveDeviceSecret(cfg.deviceSecret, storeCfg.dataDir), id, device.credentialVersion) + '\n')
      })
    },
  },
  {
    name: 'devices list',
    summary: 'List devices with their type, grid and telemetry topic',
    options: {
      type: { type: 'string', description: 'only devices of this type (e.g. smoke)', valueName: 'type' },
      grid: { type: 'string', description: 'only devices in this grid: an id or code of a micro-grid, community, street or district', valueName: 'grid' },
      limit: { type: 'string', description: 'at most this many (default 50)', valueName: 'n' },
      json: { type: 'boolean', description: 'print JSON lines' },
    },
    async run({ values, configFile, stdout }) {
      const limit = numberOption(values, 'limit') ?? 50
      if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a positive integer')
      return withStore({ file: configFile }, async ({ store }) => {
        const where: string[] = []
        const params: Record<string, string | number> = { limit }
        if (typeof values.type === 'string') {
          where.push('d.type = {type:String}')
          params.type = values.type
        }
        if (typeof values.grid === 'string') {
          where.push(`{grid:String} IN (toString(d.micro_grid_id), toString(d.community_id), toString(d.street_id), toString(d.district_id), g.code)
                      OR g.community_id IN (SELECT id FROM grids WHERE code = {grid:String})`)
          params.grid = values.grid
        }
        const rs = await store.client.query({
          query: `SELECT d.id AS id, d.type AS type, g.code AS grid, d.lon AS lon, d.lat AS lat, d.interval_s AS interval_s
                  FROM ${CURRENT_DEVICES} d LEFT JOIN (SELECT id, code, community_id FROM grids WHERE level = 'micro') g ON g.id = d.micro_grid_id
                  ${where.length ? `WHERE ${where.map((w) => `(${w})`).join(' AND ')}` : ''} ORDER BY d.id LIMIT {limit:UInt32}`,
          query_params: params, format: 'JSONEachRow',
        })
        const rows = await rs.json<{ id: string; type: string; grid: string; lon: number; lat: number; interval_s: number }>()
        for (const r of rows) {
          stdout.write(values.json
            ? JSON.stringify({ ...r, topic: deviceTopics(r.id).telemetry }) + '\n'
            : `${r.id}  ${r.type.padEnd(16)} ${r.grid.padEnd(22)} ${deviceTopics(r.id).telemetry}\n`)
        }
        if (rows.length === 0) stdout.write('no devices match\n')
      })
    },
  },
  {
    name: 'devices deny',
    summary: 'Revoke a device\'s access now: every gateway refuses it and ends its connections within mqtt.denyListRefreshMs (no restart)',
    args: '<deviceId>',
    options: { reason: { type: 'string', description: 'why (kept with the denial, e.g. "stolen", "floods")', valueName: 'text' } },
    async run({ positionals, values, configFile, stdout }) {
      const id = oneDevice(positionals, 'deny')
      const reason = typeof values.reason === 'string' ? values.reason : ''
      return withStore({ file: configFile }, async ({ store }) => {
        await requireDevice(store.client, id)
        await setDenial(store.client, { deviceId: id, denied: true, reason, actor: cliActor() })
        stdout.write(`${id} denied${reason ? ` (${reason})` : ''}; give it back with: citytwin devices allow ${id}\n`)
      })
    },
  },
  {
    name: 'devices allow',
    summary: 'Give a denied device its access back (it connects again at its next try)',
    args: '<deviceId>',
    async run({ positionals, configFile, stdout }) {
      const id = oneDevice(positionals, 'allow')
      return withStore({ file: configFile }, async ({ store }) => {
        await requireDevice(store.client, id)
        await setDenial(store.client, { deviceId: id, denied: false, reason: '', actor: cliActor() })
        stdout.write(`${id} allowed\n`)
      })
    },
  },
  {
    name: 'devices denied',
    summary: 'List the devices whose access is revoked, with who did it, when and why',
    options: { json: { type: 'boolean', description: 'print JSON lines' } },
    async run({ values, configFile, stdout }) {
      return withStore({ file: configFile }, async ({ store }) => {
        const list = await listDenials(store.client)
        for (const d of list) stdout.write(values.json ? JSON.stringify(d) + '\n' : `${d.deviceId}  ${new Date(d.at).toISOString()}  ${d.actor}  ${d.reason}\n`)
        if (list.length === 0 && !values.json) stdout.write('no device is denied\n')
      })
    },
  },
  {
    name: 'gateway mqtt',
    summary: 'Run the MQTT gateway alone, in one or several processes (against a running `citytwin start`, its own embedded store, or a ClickHouse server)',
    options: {
      port: { type: 'string', description: 'MQTT port (default 1883; also CITYTWIN_MQTT_PORT)', valueName: 'port' },
      workers: { type: 'string', description: 'gateway processes sharing the port (default 1); each may hold 20,000 connections here', valueName: 'n' },
    },
    async run({ values, configFile, stdout }) {
      const workers = numberOption(values, 'workers') ?? 1
      if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new UsageError('--workers must be an integer from 1 to 64')
      const port = numberOption(values, 'port')
      guardUnhandledRejections()
      if (cluster.isWorker) {
        lowerWorkerThreads()
        answerMetricsAsks(String(workerSlot() ?? cluster.worker?.id ?? 0))
        return runGatewayProcess(configFile, port, () => undefined)
      }
      const setup = await openMigratedStore({ file: configFile })
      const { store, writerCfg } = setup
      // A long-running process that opened the embedded store serves it, so
      // other commands (and the workers) can use it meanwhile.
      const owner = store.mode === 'embedded' ? new StoreOwner(store, { cityHeldBy: 'citytwin gateway mqtt' }) : undefined
      const started: Component[] = []
      try {
        await owner?.start()
        if (workers === 1) {
          await runGatewayProcess(configFile, port, (p) => stdout.write(`MQTT gateway listening on port ${p} (${store.mode} store)\n`), setup)
          return
        }
        const args = [...(port === undefined ? [] : ['--port', String(port)]), ...(typeof values.config === 'string' ? ['--config', values.config] : [])]
        const gateways = new MqttCluster({ store, writerCfg, workers, args, ...workerLimits(loadConfig(mqttConfig, { file: configFile })) })
        await startAll([gateways], started)
        stdout.write(`MQTT gateway listening on port ${gateways.port} (${workers} workers, ${store.mode} store)\n`)
        log.info({ signal: await untilSignal() }, 'stopping')
      } finally {
        await stopAll(started, Date.now() + 25_000)
        await owner?.stop(Date.now() + 5_000)
        await store.close()
      }
    },
  },
]

function oneDevice(positionals: readonly string[], verb: string): string {
  const id = positionals[0]
  if (!id || positionals.length > 1) throw new UsageError(`give one device id, e.g. citytwin devices ${verb} D0000001`)
  return id
}

async function requireDevice(client: ClickHouseClient, id: string): Promise<void> {
  const rs = await client.query({ query: 'SELECT toUInt32(count()) AS n FROM devices WHERE id = {id:String}', query_params: { id }, format: 'JSONEachRow' })
  if (((await rs.json<{ n: number }>())[0]?.n ?? 0) === 0) throw new CitytwinError('DEVICE_NOT_FOUND', `no device ${id} in the city (see citytwin devices list)`)
}

/** One gateway process: writers and gateway on the given store (or one it opens), until a signal. */
async function runGatewayProcess(configFile: Record<string, unknown>, port: number | undefined, ready: (port: number) => void, opened?: StoreSetup): Promise<void> {
  const { store, writerCfg } = opened ?? (await openMigratedStore({ file: configFile }))
  const ingest = await createMqttIngest(store, writerCfg, { file: configFile }, { port }, cluster.isWorker)
  const started: Component[] = []
  try {
    await startAll(ingest.components, started)
    ready(ingest.gateway.port)
    if (cluster.isWorker) process.send?.({ type: 'mqtt-ready', port: ingest.gateway.port, pid: process.pid })
    log.info({ signal: await untilSignal(), port: ingest.gateway.port }, 'stopping')
  } finally {
    await stopAll(started, Date.now() + 15_000)
    if (!opened) await store.close()
    // A worker's IPC channel to the primary keeps its process alive: with it
    // open, a stopped worker waited for the primary to kill it at the
    // deadline (10 s on every stop of `citytwin start --workers N`).
    if (cluster.isWorker && process.connected) process.disconnect?.()
  }
}
