// The system as `citytwin start` wires it (store, live twin on the
// in-process bus, rules, API), built in a test's own process on a small
// city in a temp store, for the tests that drive it through its edges.
import { join } from 'node:path'
import { MemoryBus, type MemoryBusOptions } from '../lib/bus/bus.ts'
import { PositionClock } from '../lib/bus/position.ts'
import { loadConfig } from '../lib/config.ts'
import { READINGS_COLUMNS } from '../ingest/mqtt/telemetry.ts'
import { ruleRoutes } from '../rules/api.ts'
import type { RulesConfig } from '../rules/config.ts'
import { open311Routes } from '../rules/open311.ts'
import { RulesService } from '../rules/service.ts'
import type { City } from '../registry/city.ts'
import { writeCity } from '../registry/city-store.ts'
import { apiConfig, type ApiConfig } from '../twin/api/config.ts'
import { ApiServer } from '../twin/api/server.ts'
import { LiveTwin } from '../twin/state/live-twin.ts'
import { openMigratedStore, StoreWriter, type Store } from '../store/index.ts'
import { tempDir } from './helpers.ts'
import { twinConfig } from '../twin/state/config.ts'

export interface TestSystem {
  city: City
  store: Store
  bus: MemoryBus
  live: LiveTwin
  readings: StoreWriter
  /** What the gateway does with a reading: store the rows, then publish the element; resolves once the twin and the rules have taken it. */
  report(deviceId: string, ts: number, values: Record<string, number>): Promise<void>
  /** Everything opened here, stopped (the rules and API the test started are its own to stop first). */
  close(): Promise<void>
}

/** The city in a fresh store, a writer for readings, and the live twin on a bus. */
export async function openSystem(city: City, twin: { sweepIntervalMs: number; degradedAfterMs?: number; checkpointIntervalMs?: number }, busOptions?: number | MemoryBusOptions): Promise<TestSystem> {
  const opened = await openMigratedStore({ env: {} }, { dataDir: join(tempDir(), 'db') })
  const store = opened.store
  await writeCity(store.client, city, opened.writerCfg)
  // Positions as the gateway's writers keep them, so the rules can replay from the store.
  const readings = new StoreWriter({ client: store.client, table: 'readings', columns: READINGS_COLUMNS, config: { ...opened.writerCfg, flushIntervalMs: 20 }, positions: new PositionClock() })
  await readings.start()
  // A number is the bus's capacity.
  const bus = new MemoryBus(typeof busOptions === 'number' ? { capacity: busOptions } : busOptions ?? {})
  // maxLagMs 0: tests report readings at times of their choosing, some long past, which would read as lag.
  const live = new LiveTwin({ client: store.client, bus, config: { ...twinConfig.schema.parse({}), silentAfterIntervals: 3, maxLagMs: 0, degradedAfterMs: twin.degradedAfterMs ?? 0, sweepIntervalMs: twin.sweepIntervalMs, checkpointIntervalMs: twin.checkpointIntervalMs ?? 3_600_000 } })
  await live.start()
  return {
    city, store, bus, live, readings,
    async report(deviceId, ts, values) {
      const d = city.devices.find((x) => x.id === deviceId)
      if (!d) throw new Error(`no ${deviceId}`)
      const stored = await readings.write(Object.entries(values).map(([m, v]) => [ts, d.id, d.type, m, v, 1, d.microGridId, d.communityId, d.streetId, d.districtId, ts]))
      bus.publish([{ kind: 'reading', deviceId, ts, values, ...(stored.position === undefined ? {} : { pos: stored.position }) }])
      await bus.idle()
    },
    async close() {
      await live.stop()
      await readings.stop(Date.now() + 2_000)
      await store.close()
    },
  }
}

export async function startRules(sys: TestSystem, config: RulesConfig, clock?: () => number): Promise<RulesService> {
  const rules = new RulesService({ client: sys.store.client, bus: sys.bus, twin: sys.live, config, ...(clock ? { clock } : {}) })
  await rules.start()
  return rules
}

/** The API on a free port with the twin's, the rules' and Open311's routes. */
export async function startApi(sys: TestSystem, rules: RulesService, overrides: Partial<ApiConfig>, staticDir?: string): Promise<ApiServer> {
  const api = new ApiServer({
    // Reads open, as in the demo (`citytwin start`); a test of tokens sets openReads off.
    config: loadConfig(apiConfig, { env: {}, overrides: { port: 0, openReads: true, ...overrides } }),
    client: sys.store.client, twin: sys.live, routes: [...ruleRoutes(rules, sys.store.client), ...open311Routes(rules, sys.store.client)],
    ...(staticDir ? { staticDir } : {}),
  })
  await api.start()
  return api
}
