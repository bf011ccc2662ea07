// `citytwin start`: the whole system, embedded, in one command. It opens
// the store (and serves it to other processes), makes sure a city is there,
// and runs the MQTT gateway and the API; each later stage adds its
// components here, in data-flow order so shutdown can run it backwards.
import { startAll, stopAll, type Component } from '../lib/component.ts'
import { CitytwinError, isCitytwinError } from '../lib/errors.ts'
import { loadConfig } from '../lib/config.ts'
import { logger } from '../lib/log.ts'
import { guardUnhandledRejections } from '../lib/process-guard.ts'
import { numberOption, UsageError, type Command } from '../lib/command.ts'
import { apiConfig } from '../twin/api/config.ts'
import { ApiServer } from '../twin/api/server.ts'
import { openMigratedStore, StoreOwner } from '../store/index.ts'
import { cityCounts, generateCity } from '../simulators/city/generate.ts'
import { readCityFigures, writeCity } from '../registry/city-store.ts'
import { untilSignal } from '../ingest/mqtt/cli.ts'
import { MqttCluster, workerLimits } from '../ingest/mqtt/cluster.ts'
import { mqttConfig } from '../ingest/mqtt/config.ts'
import { createMqttIngest } from '../ingest/mqtt/index.ts'
import { MemoryBus } from '../lib/bus/bus.ts'
import { busConfig } from '../lib/bus/config.ts'
import { PositionClock } from '../lib/bus/position.ts'
import { twinConfig } from '../twin/state/config.ts'
import { LiveTwin } from '../twin/state/live-twin.ts'
import { ruleRoutes } from '../rules/api.ts'
import { rulesConfig } from '../rules/config.ts'
import { open311Routes } from '../rules/open311.ts'
import { RulesService } from '../rules/service.ts'
import { resolveDeviceSecret } from '../ingest/mqtt/tokens.ts'
import { DemoFleet } from '../simulators/demo/demo.ts'
import { DemoCameras } from '../simulators/demo/cameras.ts'
import { createCameraIngest, type CameraIngest } from '../ingest/rtsp/index.ts'
import { snapshotRoutes } from '../twin/api/snapshot-routes.ts'

/** The viewer's build (npm run build:viewer; npm start builds it first). */
const VIEWER_DIST = new URL('../viewer/dist/', import.meta.url).pathname

const log = logger('start')

/** The demo city: small enough to be up in seconds, same proportions as the real one. */
export const DEMO_SCALE = 0.01

export const startCommand: Command = {
  name: 'start',
  summary: 'Run the whole system embedded: store, MQTT gateway, API and a demo city (Ctrl-C stops it gracefully)',
  options: {
    full: { type: 'boolean', description: 'use the full-scale city (219,300 devices, 130,000 cameras) instead of the demo' },
    scale: { type: 'string', description: `city scale in (0, 1] (default ${DEMO_SCALE}, or 1 with --full)`, valueName: 's' },
    seed: { type: 'string', description: 'city seed (default 1)', valueName: 'n' },
    port: { type: 'string', description: 'API port (default 8080; also CITYTWIN_API_PORT)', valueName: 'port' },
    'mqtt-port': { type: 'string', description: 'MQTT port for devices (default 1883; also CITYTWIN_MQTT_PORT)', valueName: 'port' },
    workers: { type: 'string', description: 'MQTT gateway processes (default 1); the full city needs about 12, as one process may hold 20,000 connections here', valueName: 'n' },
    'stop-grace-ms': { type: 'string', description: 'how long a graceful stop may take (default 15000)', valueName: 'ms' },
    cameras: { type: 'boolean', description: 'run the camera gateway for a city other than the demo (its cameras\' own URLs; the demo city runs it against its camera simulator unless --no-demo)' },
    'no-demo': { type: 'boolean', description: 'with the demo city, do not run its simulated devices and incidents (they run by default, so the map is alive at once)' },
    'demo-incident-every-s': { type: 'string', description: 'with the demo city, inject an incident (gas leak, smoke, elevator entrapment, in turn) this often; the first comes 15 s after its devices connect (default 300)', valueName: 's' },
  },
  async run({ values, configFile, stdout }) {
    const seed = numberOption(values, 'seed') ?? 1
    const scale = numberOption(values, 'scale') ?? (values.full ? 1 : DEMO_SCALE)
    if (!(scale > 0 && scale <= 1)) throw new UsageError('--scale must be greater than 0 and at most 1')
    const graceMs = numberOption(values, 'stop-grace-ms') ?? 15_000
    const workers = numberOption(values, 'workers') ?? 1
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new UsageError('--workers must be an integer from 1 to 64')
    const demoEveryS = numberOption(values, 'demo-incident-every-s') ?? 300
    if (!(demoEveryS >= 1 && demoEveryS <= 86_400)) throw new UsageError('--demo-incident-every-s must be from 1 to 86400 (a day)')
    // The API's configuration, checked before anything starts; its defaults depend on the city (below).
    const apiConfigOf = (demo: boolean): ReturnType<typeof apiConfig.schema.parse> =>
      loadConfig(apiConfig, { file: configFile, overrides: { port: numberOption(values, 'port') }, defaults: demo ? { openReads: true } : {} })
    apiConfigOf(false)
    // A generated city was asked for by name (rather than the default demo).
    const askedForCity = values.full === true || values.scale !== undefined || values.seed !== undefined
    guardUnhandledRejections()

    const { store, writerCfg } = await openMigratedStore({ file: configFile })
    if (store.mode === 'owner') {
      await store.close()
      throw new CitytwinError('STORE_LOCKED', `citytwin is already running on the store in ${store.dataDir}; stop it first or use another --data-dir`)
    }
    // Started in data-flow order; `components` holds them in stop order
    // (the reverse): sources first, the store owner last.
    const components: Component[] = []
    try {
      if (store.mode === 'embedded') await startAll([new StoreOwner(store, { cityHeldBy: 'citytwin start' })], components)
      const figures = await readCityFigures(store.client)
      // A city's own data (citytwin city import) is kept: start never replaces it with a generated one.
      const imported = figures.source !== ''
      if (imported && askedForCity) {
        throw new CitytwinError('CITY_IMPORTED', `the store in ${store.dataDir} holds the imported city "${figures.source.replace(/^import: /, '')}"; --full, --scale and --seed would replace it with a generated city. ` +
          'Start without them to run the imported city, or replace it deliberately with citytwin city generate (or use another --data-dir)')
      }
      // The demo city is for trying citytwin out: its map and tickets may be read without a token, unless configured.
      // A city's own deployment (imported, --full or any other scale) reads with tokens by default.
      const demo = !imported && scale === DEMO_SCALE
      const api = apiConfigOf(demo)
      // The city is a pure function of (seed, scale): keep the stored one when it is that city.
      const same = imported || (figures.seed === seed && figures.devices === cityCounts(scale).devices && figures.cameras === cityCounts(scale).cameras)
      if (!same) {
        const t0 = performance.now()
        const city = generateCity({ seed, scale })
        await writeCity(store.client, city, writerCfg)
        log.info({ seed, scale, ms: Math.round(performance.now() - t0) }, 'city written')
      } else {
        log.info({ seed: figures.seed, source: figures.source, devices: figures.devices }, 'using the city already in the store')
      }
      // Data-flow order: the twin listens on the bus before the gateway publishes on it.
      const bus = new MemoryBus(loadConfig(busConfig, { file: configFile }))
      const gatewayCfg = loadConfig(mqttConfig, { file: configFile })
      const twin = new LiveTwin({ client: store.client, bus, config: loadConfig(twinConfig, { file: configFile }), maxPastMs: gatewayCfg.maxPastMs })
      // The rules listen after the twin, so they read each element's effects on the live state.
      const rules = new RulesService({ client: store.client, bus, twin, config: loadConfig(rulesConfig, { file: configFile }), maxPastMs: gatewayCfg.maxPastMs })
      await startAll([twin, rules], components)
      // The bus positions the gateways' writers stamp go on above everything the rules found stored.
      const positions = new PositionClock()
      positions.above(rules.highestPosition)
      const mqttPort = numberOption(values, 'mqtt-port')
      let gatewayPort: () => number
      if (workers === 1) {
        const ingest = await createMqttIngest(store, writerCfg, { file: configFile }, { port: mqttPort }, undefined, bus, positions)
        await startAll(ingest.components, components)
        // Silence is not judged for readings still waiting in the gateway (twin/state/lag.ts).
        twin.watchIngest(ingest)
        gatewayPort = () => ingest.gateway.port
      } else {
        // The workers relay their rows here; once stored, they go on this process's bus to the twin.
        const args = [...(mqttPort === undefined ? [] : ['--port', String(mqttPort)]), ...(typeof values.config === 'string' ? ['--config', values.config] : [])]
        const gateways = new MqttCluster({ store, writerCfg, workers, args, ...workerLimits(gatewayCfg), bus, positions })
        await startAll([gateways], components)
        twin.watchIngest(gateways)
        gatewayPort = () => gateways.port
      }
      // Cameras: the demo's against its simulator on loopback, another city's only when asked (--cameras).
      let cameraLine = ''
      let cameraIngest: CameraIngest | undefined
      const demoCameras = demo && values['no-demo'] !== true
      if (demoCameras || values.cameras === true) {
        let streamHost: string | undefined
        if (demoCameras) {
          const sim = new DemoCameras()
          try {
            await startAll([sim], components)
            streamHost = sim.hostPort
          } catch (e) {
            // The demo runs without cameras rather than not at all (ffmpeg renders the simulator's clips).
            if (!isCitytwinError(e) || e.code !== 'FFMPEG_MISSING') throw e
            log.warn({ err: e.message }, 'the demo runs without cameras')
            cameraLine = `  cameras  not simulated: ${e.message}\n`
          }
        }
        if (!demoCameras || streamHost) {
          // The demo's cameras on a quicker schedule than a city's, so their states show within a minute or two.
          const sources = { file: configFile, ...(demoCameras ? { defaults: { reachEveryS: 60, picturesEveryS: 300 }, overrides: { streamHost } } : {}) }
          cameraIngest = createCameraIngest(store, writerCfg, sources, { shard: { index: 0, count: 1 }, bus, positions })
          await startAll(cameraIngest.components, components)
          cameraLine = `  cameras  ${cameraIngest.gateway.size} probed by the camera gateway${streamHost ? ` on the camera simulator (rtsp://${streamHost}/live/<id>)` : ''}, each every ${cameraIngest.config.reachEveryS} s, deeper every ${cameraIngest.config.picturesEveryS} s\n`
        }
      }
      const deviceSecret = resolveDeviceSecret(gatewayCfg.deviceSecret, store.dataDir)
      const server = new ApiServer({ config: api, client: store.client, components: () => components, twin, routes: [...ruleRoutes(rules, store.client), ...open311Routes(rules, store.client), ...(cameraIngest?.snapshots ? snapshotRoutes(cameraIngest.snapshots) : [])], staticDir: VIEWER_DIST, deviceSecret })
      await startAll([server], components)
      // Last to start, first to stop: the demo's devices are the system's input.
      let demoFleet: DemoFleet | undefined
      if (demo && values['no-demo'] !== true) {
        demoFleet = new DemoFleet({ client: store.client, port: gatewayPort, host: gatewayCfg.host, secret: deviceSecret, incidentEveryMs: demoEveryS * 1000, seed })
        await startAll([demoFleet], components)
      }
      const now = await readCityFigures(store.client)
      stdout.write(`citytwin is running (${store.mode} store in ${store.mode === 'server' ? 'ClickHouse' : store.dataDir})\n` +
        `  city ${now.source === '' ? `seed ${now.seed}` : `"${now.source.replace(/^import: /, '')}" (imported)`}: ${now.grids.community ?? 0} community grids, ${now.devices} devices, ${now.cameras} cameras\n` +
        `  MQTT     port ${gatewayPort()}${workers > 1 ? ` (${workers} processes)` : ''} (devices: citytwin devices list; passwords: citytwin device-token <id>)\n` +
        cameraLine +
        (demoFleet ? `  demo     ${demoFleet.devices} simulated devices reporting; an incident (gas leak, smoke, elevator entrapment) 15 s after start, then every ${demoEveryS} s; they hold the demo devices' ids, so to connect devices of your own start with --no-demo\n` : '') +
        `  viewer   ${server.url}/ (${api.openReads ? 'reads open without a token' : `reads need a token: CITYTWIN_API_TOKENS (${api.tokens.length} configured)`})\n  API      ${server.url}/api/city, tickets ${server.url}/api/tickets, Open311 ${server.url}/open311/v2/services.json (OpenAPI: ${server.url}/api/openapi.json; live: ws://${server.url.slice(7)}/api/live)\n  metrics  ${server.url}/metrics\n  health   ${server.url}/healthz\n` +
        'Press Ctrl-C to stop.\n')
      log.info({ signal: await untilSignal() }, 'stopping')
    } finally {
      const failures = await stopAll(components, Date.now() + graceMs)
      for (const f of failures) log.error({ err: f.error, component: f.name }, 'component did not stop cleanly')
      await store.close()
    }
    stdout.write('citytwin stopped\n')
  },
}
