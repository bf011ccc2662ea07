// Store benchmark (`npm run bench:store`): loads synthetic readings for the
// full city through the StoreWriter, as the gateway would, and times the
// roll-up queries on what it loaded. Aim (issue): at least 500,000 rows/s
// sustained into chDB, and any per-grid hourly query over 100M rows under
// 1 s. Prints its figures and writes them to bench/results/store-<date>.json.
//
//   npm run bench:store -- [--rows N] [--data-dir DIR] [--keep] [--seed N]
//     [--scale F] [--batch ROWS] [--concurrency N] [--queue-rows ROWS]
//     [--chunk ROWS] [--interval-factor F] [--runs N] [--gen-only]
//
// Every option may also be given as BENCH_STORE_<OPTION> (BENCH_STORE_ROWS,
// BENCH_STORE_DATA_DIR...). CLICKHOUSE_URL benches a ClickHouse server instead
// of the embedded store.
//
// The readings are time-major, as they arrive in production: every device of
// every type reports each metric of its type once per interval (at a fixed
// phase and millisecond offset of its own), starting at SIM_START_MS. At the
// catalogue's intervals the full city sends about 57,000 readings per second
// of city time, so 100M rows are about 29 minutes of it; --interval-factor
// stretches every interval to spread the same rows over more hours.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, platform, release, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { loadConfig } from '../lib/config.ts'
import { CitytwinError, messageOf } from '../lib/errors.ts'
import { generateCity } from '../simulators/city/generate.ts'
import { DEVICE_TYPE_BY_NAME, type MetricSpec } from '../registry/device-types.ts'
import { PositionClock } from '../lib/bus/position.ts'
import { openMigratedStore, Rollups, StoreWriter, writerConfig, type Row, type Store, type WriterConfig } from '../store/index.ts'

const READINGS_COLUMNS = ['ts', 'device_id', 'device_type', 'metric', 'value', 'seq', 'micro_grid_id', 'community_id', 'street_id', 'district_id', 'received_at'] as const
// Yesterday, 00:00 UTC: recent enough that no TTL (readings_1m keeps 14 days)
// drops the rows as they are merged, which a fixed date would in time.
const SIM_START_MS = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 86_400_000
const AIM_ROWS_PER_S = 500_000
const AIM_PER_GRID_HOURLY_MS = 1_000
const HUNDRED_MILLION = 100_000_000
const PROGRESS_EVERY_MS = 5_000
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

// ---------------------------------------------------------------- options

interface Options {
  rows: number
  dataDir: string | undefined
  keep: boolean
  seed: number
  scale: number
  batch: number | undefined
  concurrency: number | undefined
  queueRows: number | undefined
  chunk: number | undefined
  intervalFactor: number
  runs: number
  genOnly: boolean
}

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      rows: { type: 'string' }, 'data-dir': { type: 'string' }, keep: { type: 'boolean' }, seed: { type: 'string' },
      scale: { type: 'string' }, batch: { type: 'string' }, concurrency: { type: 'string' }, 'queue-rows': { type: 'string' },
      chunk: { type: 'string' }, 'interval-factor': { type: 'string' }, runs: { type: 'string' }, 'gen-only': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    process.stdout.write('usage: npm run bench:store -- [--rows N] [--data-dir DIR] [--keep] [--seed N] [--scale F] [--batch ROWS]\n' +
      '  [--concurrency N] [--queue-rows ROWS] [--chunk ROWS] [--interval-factor F] [--runs N] [--gen-only]\n')
    process.exit(0)
  }
  const raw = (name: keyof typeof values): string | boolean | undefined =>
    values[name] ?? env[`BENCH_STORE_${name.replace(/-/g, '_').toUpperCase()}`]
  const num = (name: keyof typeof values, check: (n: number) => boolean, what: string): number | undefined => {
    const v = raw(name)
    if (v === undefined || typeof v === 'boolean') return undefined
    const n = Number(v.replace(/_/g, ''))
    if (!check(n)) throw new CitytwinError('CLI_USAGE', `--${name} must be ${what}, got "${v}"`)
    return n
  }
  const flag = (name: keyof typeof values): boolean => {
    const v = raw(name)
    return v === true || (typeof v === 'string' && /^(1|true|yes|on)$/i.test(v))
  }
  const posInt = (n: number): boolean => Number.isInteger(n) && n > 0
  const dataDir = raw('data-dir')
  return {
    rows: num('rows', posInt, 'a positive integer') ?? HUNDRED_MILLION,
    dataDir: typeof dataDir === 'string' ? resolve(dataDir) : undefined,
    keep: flag('keep'),
    seed: num('seed', Number.isInteger, 'an integer') ?? 1,
    scale: num('scale', (n) => n > 0 && n <= 1, 'in (0, 1]') ?? 1,
    batch: num('batch', posInt, 'a positive integer'),
    concurrency: num('concurrency', posInt, 'a positive integer'),
    queueRows: num('queue-rows', posInt, 'a positive integer'),
    chunk: num('chunk', posInt, 'a positive integer'),
    intervalFactor: num('interval-factor', (n) => n >= 1, 'at least 1') ?? 1,
    runs: num('runs', posInt, 'a positive integer') ?? 5,
    genOnly: flag('gen-only'),
  }
}

// ---------------------------------------------------------------- readings

interface MetricGen {
  readonly name: string
  readonly min: number
  readonly max: number
  readonly typical: number
  readonly spread: number
  readonly kind: 'bool' | 'count' | 'level'
}

/** What never changes between two readings of one device. */
interface DeviceGen {
  readonly id: string
  readonly type: string
  readonly micro: number
  readonly community: number
  readonly street: number
  readonly district: number
  readonly intervalS: number
  /** Second within the interval at which the device reports, and the millisecond within it. */
  readonly phaseS: number
  readonly offsetMs: number
  /** Network and gateway delay between the reading and its arrival. */
  readonly latencyMs: number
  readonly metrics: readonly MetricGen[]
}

interface Fleet {
  readonly devices: readonly DeviceGen[]
  /** intervals[k] reports devices byPhase[k][t % intervals[k]] at second t. */
  readonly intervals: readonly number[]
  readonly byPhase: readonly (readonly DeviceGen[])[][]
  readonly rowsPerSimSecond: number
  readonly communities: number
  /** The community grid with the most readings: the heaviest per-grid query. */
  readonly busiestCommunity: { id: number; rowsPerSimSecond: number; devices: number }
}

function metricGen(m: MetricSpec): MetricGen {
  const kind = m.unit === 'bool' ? 'bool' : m.unit === 'count' ? 'count' : 'level'
  return { name: m.name, min: m.min, max: m.max, typical: m.typical, spread: Math.max(Math.abs(m.typical) * 0.1, (m.max - m.min) * 0.005), kind }
}

/** xorshift32: cheap and deterministic; the bench must measure the store, not the generator. */
function rng(seed: number): () => number {
  let s = (seed ^ 0x9e3779b9) >>> 0 || 1
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 4294967296
  }
}

function buildFleet(seed: number, scale: number, intervalFactor: number): Fleet {
  const city = generateCity({ seed, scale })
  const rand = rng(seed)
  const metricsOf = new Map<string, MetricGen[]>()
  for (const [type, spec] of DEVICE_TYPE_BY_NAME) metricsOf.set(type, spec.metrics.map(metricGen))
  const devices: DeviceGen[] = city.devices.map((d) => {
    const intervalS = Math.max(1, Math.round(d.intervalS * intervalFactor))
    return {
      id: d.id, type: d.type, micro: d.microGridId, community: d.communityId, street: d.streetId, district: d.districtId, intervalS,
      phaseS: Math.floor(rand() * intervalS), offsetMs: Math.floor(rand() * 1000), latencyMs: 15 + Math.floor(rand() * 120),
      metrics: metricsOf.get(d.type) ?? [],
    }
  })
  const intervals = [...new Set(devices.map((d) => d.intervalS))].sort((a, b) => a - b)
  const byPhase = intervals.map((i) => Array.from({ length: i }, (): DeviceGen[] => []))
  const perCommunity = new Map<number, { rows: number; devices: number }>()
  let rowsPerSimSecond = 0
  for (const d of devices) {
    byPhase[intervals.indexOf(d.intervalS)]?.[d.phaseS]?.push(d)
    const r = d.metrics.length / d.intervalS
    rowsPerSimSecond += r
    const c = perCommunity.get(d.community) ?? { rows: 0, devices: 0 }
    c.rows += r
    c.devices++
    perCommunity.set(d.community, c)
  }
  let busiest = { id: 0, rowsPerSimSecond: -1, devices: 0 }
  for (const [id, c] of perCommunity) if (c.rows > busiest.rowsPerSimSecond) busiest = { id, rowsPerSimSecond: c.rows, devices: c.devices }
  return { devices, intervals, byPhase, rowsPerSimSecond, communities: perCommunity.size, busiestCommunity: busiest }
}

function valueOf(m: MetricGen, r: () => number): number {
  if (m.kind === 'bool') return r() < 0.999 ? m.typical : 1 - m.typical
  if (m.kind === 'count') return r() < 0.99 ? m.typical : Math.min(m.max, m.typical + 1 + Math.floor(r() * 3))
  // Sum of two uniforms: a cheap bell around the typical value.
  const v = m.typical + (r() + r() - 1) * 2 * m.spread
  return Math.round(Math.min(m.max, Math.max(m.min, v)) * 100) / 100
}

/** Readings in chunks of `chunkRows`, time-major, `total` rows in all. */
function* readings(fleet: Fleet, total: number, chunkRows: number, seed: number, state: { simSecond: number }): Generator<Row[]> {
  const r = rng(seed + 1)
  let left = total
  let chunk: Row[] = []
  for (let t = 0; ; t++) {
    state.simSecond = t
    const secondMs = SIM_START_MS + t * 1000
    for (let k = 0; k < fleet.intervals.length; k++) {
      const interval = fleet.intervals[k] as number
      const due = fleet.byPhase[k]?.[t % interval] ?? []
      const seq = Math.floor(t / interval)
      for (const d of due) {
        // DateTime64(3) columns go as integer epoch milliseconds: JSONCompactEachRow
        // reads a JSON integer as the column's ticks, and rejects a fractional number.
        const ts = secondMs + d.offsetMs
        const receivedAt = ts + d.latencyMs
        for (const m of d.metrics) {
          chunk.push([ts, d.id, d.type, m.name, valueOf(m, r), seq, d.micro, d.community, d.street, d.district, receivedAt])
          if (--left === 0) {
            yield chunk
            return
          }
          if (chunk.length === chunkRows) {
            yield chunk
            chunk = []
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------- load

interface Interval {
  atS: number
  rows: number
  rowsPerS: number
  rssMiB: number
  queued: number
}

interface LoadResult {
  rows: number
  wallS: number
  rowsPerS: number
  generateS: number
  simSeconds: number
  intervals: Interval[]
  rssPeakSampledMiB: number
  writer: Record<string, unknown>
}

const mib = (bytes: number): number => Math.round(bytes / 1048576)
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

async function load(store: Store | undefined, cfg: WriterConfig, fleet: Fleet, opts: Options, chunkRows: number): Promise<LoadResult> {
  // As the gateway writes: positions stamped, the roll-ups summed from what is stored.
  const rollups = store ? new Rollups({ client: store.client, columns: READINGS_COLUMNS, intervalMs: cfg.rollupIntervalMs, maxPastMs: 400 * 86_400_000 }) : undefined
  const writer = store && rollups ? new StoreWriter({ client: store.client, table: 'readings', columns: READINGS_COLUMNS, config: cfg, positions: new PositionClock(), onStored: rollups.onStored }) : undefined
  await rollups?.start()
  await writer?.start()
  // Enough writes in flight to keep the writer's queue full and every insert
  // slot busy, plus one waiting for room; the writer's backpressure bounds the rest.
  const maxPending = Math.ceil(cfg.queueRows / chunkRows) + cfg.concurrency + 1
  const pending: Promise<void>[] = []
  let failure: Error | undefined
  let handed = 0
  let generateMs = 0
  const sim = { simSecond: 0 }
  const intervals: Interval[] = []
  let rssPeak = process.memoryUsage.rss()
  const inserted = (): number => (writer ? Number(writer.stats().inserted) : handed)
  const t0 = performance.now()
  let last = { at: t0, rows: 0 }
  const progress = setInterval(() => {
    const now = performance.now()
    const rows = inserted()
    const rss = process.memoryUsage.rss()
    rssPeak = Math.max(rssPeak, rss)
    const iv: Interval = { atS: (now - t0) / 1000, rows, rowsPerS: ((rows - last.rows) * 1000) / (now - last.at), rssMiB: mib(rss), queued: writer ? Number(writer.stats().queued) : 0 }
    intervals.push(iv)
    last = { at: now, rows }
    console.log(`  ${iv.atS.toFixed(0).padStart(5)} s  ${fmt(rows).padStart(13)} rows  ${fmt(iv.rowsPerS).padStart(9)} rows/s  rss ${iv.rssMiB} MiB  queued ${fmt(iv.queued)}`)
  }, PROGRESS_EVERY_MS)
  try {
    const gen = readings(fleet, opts.rows, chunkRows, opts.seed, sim)
    for (;;) {
      const g0 = performance.now()
      const next = gen.next()
      generateMs += performance.now() - g0
      if (next.done) break
      const chunk = next.value
      handed += chunk.length
      if (writer) {
        pending.push(writer.write(chunk).then(() => undefined, (e: unknown) => { failure ??= e instanceof Error ? e : new Error(messageOf(e)) }))
        if (pending.length >= maxPending) await pending.shift()
      } else if (handed % (chunkRows * 20) === 0) {
        // --gen-only: let the progress timer run.
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
      if (failure !== undefined) throw failure
    }
    await Promise.all(pending)
    if (failure !== undefined) throw failure
    await writer?.flush()
  } finally {
    clearInterval(progress)
  }
  const wallS = (performance.now() - t0) / 1000
  await writer?.stop(Date.now() + 60_000)
  await rollups?.stop(Date.now() + 60_000)
  rssPeak = Math.max(rssPeak, process.memoryUsage.rss())
  const rows = inserted()
  return {
    rows, wallS, rowsPerS: rows / wallS, generateS: generateMs / 1000, simSeconds: sim.simSecond + 1, intervals,
    rssPeakSampledMiB: mib(rssPeak), writer: writer ? { ...writer.stats() } : {},
  }
}

// ---------------------------------------------------------------- queries

interface QueryResult {
  name: string
  sql: string
  runsMs: number[]
  minMs: number
  medianMs: number
  maxMs: number
  rows: number
  firstRow: unknown
}

function queries(): { name: string; sql: string }[] {
  return [
    { name: 'per-grid hourly, from readings_1h', sql:
      `SELECT hour, metric, sum(n) AS n_readings, sum(total) / sum(n) AS mean, min(lo) AS low, max(hi) AS high
       FROM readings_1h WHERE community_id = {cid:UInt32} GROUP BY hour, metric ORDER BY hour, metric` },
    { name: 'per-grid hourly, from readings_1m', sql:
      `SELECT toStartOfHour(minute) AS hour, metric, sum(n) AS n_readings, sum(total) / sum(n) AS mean, min(lo) AS low, max(hi) AS high
       FROM readings_1m WHERE community_id = {cid:UInt32} GROUP BY hour, metric ORDER BY hour, metric` },
    { name: 'per-grid hourly, from raw readings', sql:
      `SELECT toStartOfHour(ts) AS hour, metric, count() AS n_readings, avg(value) AS mean, min(value) AS low, max(value) AS high
       FROM readings WHERE community_id = {cid:UInt32} GROUP BY hour, metric ORDER BY hour, metric` },
    { name: 'city-wide per-district hourly, from readings_1h', sql:
      `SELECT district_id, hour, metric, sum(n) AS n_readings, sum(total) / sum(n) AS mean, min(lo) AS low, max(hi) AS high
       FROM readings_1h GROUP BY district_id, hour, metric ORDER BY district_id, hour, metric` },
    { name: 'count of readings', sql: 'SELECT count() AS n FROM readings' },
  ]
}

async function timeQuery(store: Store, q: { name: string; sql: string }, params: Record<string, unknown>, runs: number): Promise<QueryResult> {
  const runsMs: number[] = []
  let rows: unknown[] = []
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    const rs = await store.client.query({ query: q.sql, query_params: params, format: 'JSONEachRow' })
    rows = await rs.json<unknown>()
    runsMs.push(performance.now() - t)
  }
  const sorted = [...runsMs].sort((a, b) => a - b)
  const round = (n: number): number => Math.round(n * 10) / 10
  return {
    name: q.name, sql: q.sql.replace(/\s+/g, ' '), runsMs: runsMs.map(round),
    minMs: round(sorted[0] ?? 0), medianMs: round(sorted[Math.floor(sorted.length / 2)] ?? 0), maxMs: round(sorted[sorted.length - 1] ?? 0),
    rows: rows.length, firstRow: rows[0],
  }
}

async function storage(store: Store): Promise<unknown[]> {
  const rs = await store.client.query({
    query: `SELECT table, sum(rows) AS rows, count() AS parts, sum(data_compressed_bytes) AS compressed_bytes, sum(data_uncompressed_bytes) AS uncompressed_bytes
            FROM system.parts WHERE active AND database = currentDatabase() AND table IN ('readings', 'readings_1m', 'readings_1h')
            GROUP BY table ORDER BY table`,
    format: 'JSONEachRow',
  })
  return rs.json<unknown>()
}

async function scalar(store: Store, sql: string): Promise<string> {
  const rs = await store.client.query({ query: sql, format: 'JSONEachRow' })
  const rows = await rs.json<Record<string, string | number>>()
  return String(Object.values(rows[0] ?? {})[0] ?? '')
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2), process.env)
  const startedAt = new Date()
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown', cpus: cpus().length, totalMemMiB: mib(totalmem()), platform: `${platform()} ${release()}`, node: process.version,
  }
  const writerCfg: WriterConfig = (() => {
    const base = loadConfig(writerConfig, {})
    const maxBatchRows = opts.batch ?? base.maxBatchRows
    const concurrency = opts.concurrency ?? base.concurrency
    // A bigger batch needs a queue that holds several of them, or the writer stalls between inserts.
    const queueRows = opts.queueRows ?? Math.max(base.queueRows, maxBatchRows * 4)
    return loadConfig(writerConfig, { overrides: { maxBatchRows, concurrency, queueRows } })
  })()
  const chunkRows = opts.chunk ?? writerCfg.maxBatchRows

  console.log(`citytwin store bench: ${fmt(opts.rows)} rows, batch ${fmt(writerCfg.maxBatchRows)}, concurrency ${writerCfg.concurrency}, ` +
    `queue ${fmt(writerCfg.queueRows)}, chunk ${fmt(chunkRows)}, seed ${opts.seed}, scale ${opts.scale}, interval factor ${opts.intervalFactor}`)
  console.log(`machine: ${machine.cpu}, ${machine.cpus} CPUs, ${fmt(machine.totalMemMiB)} MiB, ${machine.platform}, node ${machine.node}`)
  const c0 = performance.now()
  const fleet = buildFleet(opts.seed, opts.scale, opts.intervalFactor)
  const cityS = (performance.now() - c0) / 1000
  console.log(`city: ${fmt(fleet.devices.length)} devices in ${fmt(fleet.communities)} community grids, ${fmt(fleet.rowsPerSimSecond)} readings per city second ` +
    `(${(opts.rows / fleet.rowsPerSimSecond / 3600).toFixed(2)} h of city time); built in ${cityS.toFixed(1)} s`)

  const ownDir = opts.dataDir === undefined
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'citytwin-bench-store-'))
  let store: Store | undefined
  try {
    let chdbVersion = ''
    if (!opts.genOnly) {
      store = (await openMigratedStore({}, { dataDir })).store
      chdbVersion = await scalar(store, 'SELECT version()')
      const existing = Number(await scalar(store, 'SELECT count() FROM readings'))
      if (existing > 0) console.log(`note: the store in ${dataDir} already holds ${fmt(existing)} readings; the queries see them too`)
      console.log(`store: ${store.mode}${store.mode === 'server' ? '' : ` in ${store.dataDir}`}, ClickHouse ${chdbVersion}`)
    } else {
      console.log('--gen-only: generating rows without storing them')
    }

    console.log('load:')
    const loaded = await load(store, writerCfg, fleet, opts, chunkRows)
    const maxRssMiB = Math.round(process.resourceUsage().maxRSS / 1024)
    console.log(`loaded ${fmt(loaded.rows)} rows in ${loaded.wallS.toFixed(1)} s: ${fmt(loaded.rowsPerS)} rows/s sustained ` +
      `(generation ${loaded.generateS.toFixed(1)} s of it, ${fmt(loaded.rows / loaded.generateS)} rows/s alone); ` +
      `${(loaded.simSeconds / 60).toFixed(1)} min of city time; peak RSS ${maxRssMiB} MiB`)
    if (store) console.log(`writer: ${JSON.stringify(loaded.writer)}`)

    const results: QueryResult[] = []
    let parts: unknown[] = []
    if (store) {
      parts = await storage(store)
      console.log('storage (active parts at query time):')
      for (const p of parts) console.log(`  ${JSON.stringify(p)}`)
      const params = { cid: fleet.busiestCommunity.id }
      console.log(`queries (${opts.runs} runs each; per-grid ones on community grid ${params.cid}, the busiest: ${fleet.busiestCommunity.devices} devices):`)
      for (const q of queries()) {
        const r = await timeQuery(store, q, params, opts.runs)
        results.push(r)
        console.log(`  ${r.name.padEnd(48)} min ${r.minMs.toFixed(1).padStart(8)} ms  median ${r.medianMs.toFixed(1).padStart(8)} ms  max ${r.maxMs.toFixed(1).padStart(8)} ms  ${fmt(r.rows)} rows`)
      }
      const counted = Number((results[results.length - 1]?.firstRow as { n?: unknown } | undefined)?.n ?? 0)
      console.log(`  readings stored: ${fmt(counted)}${counted >= HUNDRED_MILLION ? ' (at least 100M)' : ' (fewer than 100M: latencies are not the 100M figures)'}`)
    }

    const perGrid = results.filter((r) => r.name.startsWith('per-grid hourly, from readings_1'))
    const report = {
      bench: 'store', startedAt: startedAt.toISOString(), machine, chdbVersion, storeMode: store?.mode ?? 'none',
      options: { ...opts, dataDir }, writer: writerCfg, chunkRows,
      city: { devices: fleet.devices.length, communities: fleet.communities, rowsPerSimSecond: Math.round(fleet.rowsPerSimSecond), busiestCommunity: fleet.busiestCommunity,
        simStart: new Date(SIM_START_MS).toISOString(), simSeconds: loaded.simSeconds, buildS: cityS },
      load: { ...loaded, rowsPerS: Math.round(loaded.rowsPerS), maxRssMiB },
      storage: parts, queries: results,
      aims: {
        rowsPerS: { aim: AIM_ROWS_PER_S, got: Math.round(loaded.rowsPerS), met: store !== undefined && loaded.rowsPerS >= AIM_ROWS_PER_S },
        perGridHourlyMs: { aim: AIM_PER_GRID_HOURLY_MS, got: Math.max(0, ...perGrid.map((r) => r.medianMs)), met: perGrid.length > 0 && perGrid.every((r) => r.medianMs < AIM_PER_GRID_HOURLY_MS) },
      },
    }
    const outDir = join(REPO_ROOT, 'bench', 'results')
    mkdirSync(outDir, { recursive: true })
    const file = join(outDir, `store-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)

    console.log('\nsummary:')
    console.log(`| machine | ${machine.cpu}, ${machine.cpus} CPUs, ${fmt(machine.totalMemMiB / 1024)} GiB, node ${machine.node}, ClickHouse ${chdbVersion || '-'} (${store?.mode ?? 'none'}) |`)
    console.log(`| load | ${fmt(loaded.rows)} rows, batch ${fmt(writerCfg.maxBatchRows)} x ${writerCfg.concurrency} |`)
    if (store) console.log(`| sustained insert rate | ${fmt(loaded.rowsPerS)} rows/s (aim ${fmt(AIM_ROWS_PER_S)}: ${report.aims.rowsPerS.met ? 'met' : 'not met'}) |`)
    else console.log(`| generation rate, nothing stored | ${fmt(loaded.rowsPerS)} rows/s |`)
    console.log(`| peak RSS | ${maxRssMiB} MiB |`)
    for (const r of results) console.log(`| ${r.name} | median ${r.medianMs} ms (min ${r.minMs}, max ${r.maxMs}), ${fmt(r.rows)} rows |`)
    console.log(`results: ${file}`)
  } finally {
    await store?.close()
    if (ownDir && !opts.keep) rmSync(dataDir, { recursive: true, force: true })
    else console.log(`store kept in ${dataDir}`)
  }
}

main().catch((e: unknown) => {
  console.error(`bench:store failed: ${messageOf(e)}`)
  process.exitCode = 1
})
