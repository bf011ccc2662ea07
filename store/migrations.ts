// Versioned schema migrations, applied in order at start-up. An applied
// migration is never edited: its checksum is recorded, and a change is
// reported as drift instead of silently diverging. Add a new version instead.
// Every statement is idempotent (IF NOT EXISTS), so two processes starting at
// once against a server cannot break each other. docs/store.md explains the
// engines, keys, partitions, codecs and TTLs.
import { createHash } from 'node:crypto'
import type { ClickHouseClient } from '@clickhouse/client'
import { CitytwinError, messageOf } from '../lib/errors.ts'
import { logger } from '../lib/log.ts'

export interface Migration {
  readonly version: number
  readonly name: string
  readonly statements: readonly string[]
}

const GRID_LEVEL_ENUM = `Enum8('district' = 1, 'street' = 2, 'community' = 3, 'micro' = 4, 'special' = 5)`

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'city model: grids, devices, cameras',
    statements: [
      `CREATE TABLE IF NOT EXISTS grids (
        id UInt32,
        level ${GRID_LEVEL_ENUM},
        code String,
        name String,
        parent_id UInt32,
        district_id UInt32,
        street_id UInt32,
        community_id UInt32,
        kind LowCardinality(String),
        ring Ring,
        centroid_lon Float64,
        centroid_lat Float64,
        area_km2 Float64,
        city_seed UInt32
      ) ENGINE = MergeTree ORDER BY (level, id)`,
      `CREATE TABLE IF NOT EXISTS devices (
        id String,
        type LowCardinality(String),
        micro_grid_id UInt32,
        community_id UInt32,
        street_id UInt32,
        district_id UInt32,
        lon Float64,
        lat Float64,
        interval_s UInt32,
        installed_at DateTime64(3, 'UTC')
      ) ENGINE = MergeTree ORDER BY id`,
      `CREATE TABLE IF NOT EXISTS cameras (
        id String,
        kind LowCardinality(String),
        micro_grid_id UInt32,
        community_id UInt32,
        street_id UInt32,
        district_id UInt32,
        lon Float64,
        lat Float64,
        rtsp_url String,
        codec LowCardinality(String),
        width UInt16,
        height UInt16,
        fps UInt8,
        bitrate_kbps UInt32,
        gop UInt16
      ) ENGINE = MergeTree ORDER BY id`,
    ],
  },
  {
    version: 2,
    name: 'element streams: readings, events, dead letters',
    statements: [
      `CREATE TABLE IF NOT EXISTS readings (
        ts DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
        device_id String CODEC(ZSTD(1)),
        device_type LowCardinality(String),
        metric LowCardinality(String),
        value Float64 CODEC(Gorilla, ZSTD(1)),
        seq UInt32 CODEC(Delta, ZSTD(1)),
        micro_grid_id UInt32 CODEC(ZSTD(1)),
        community_id UInt32,
        street_id UInt32 CODEC(ZSTD(1)),
        district_id UInt16 CODEC(ZSTD(1)),
        received_at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))
      ) ENGINE = MergeTree
      PARTITION BY toYYYYMMDD(ts)
      ORDER BY (community_id, metric, device_id, ts)
      TTL toDateTime(ts) + INTERVAL 180 DAY DELETE
      SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1`,
      `CREATE TABLE IF NOT EXISTS events (
        ts DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
        source Enum8('device' = 1, 'camera' = 2, 'rule' = 3, 'system' = 4),
        source_id String,
        kind LowCardinality(String),
        severity Enum8('info' = 1, 'warning' = 2, 'critical' = 3),
        micro_grid_id UInt32,
        community_id UInt32,
        street_id UInt32,
        district_id UInt16,
        lon Float64,
        lat Float64,
        attributes String CODEC(ZSTD(3)),
        evidence_path String
      ) ENGINE = MergeTree
      PARTITION BY toYYYYMM(ts)
      ORDER BY (kind, community_id, ts)
      TTL toDateTime(ts) + INTERVAL 2 YEAR DELETE`,
      `CREATE TABLE IF NOT EXISTS dead_letters (
        ts DateTime64(3, 'UTC'),
        source LowCardinality(String),
        code LowCardinality(String),
        reason String,
        device_id String,
        topic String,
        raw String CODEC(ZSTD(3)),
        raw_bytes UInt32,
        raw_truncated UInt8
      ) ENGINE = MergeTree
      PARTITION BY toYYYYMM(ts)
      ORDER BY (source, code, ts)
      TTL toDateTime(ts) + INTERVAL 90 DAY DELETE`,
    ],
  },
  {
    version: 3,
    name: 'roll-ups: readings per community grid and metric, per minute and per hour',
    statements: [
      `CREATE TABLE IF NOT EXISTS readings_1m (
        minute DateTime('UTC'),
        community_id UInt32,
        metric LowCardinality(String),
        device_type LowCardinality(String),
        street_id SimpleAggregateFunction(any, UInt32),
        district_id SimpleAggregateFunction(any, UInt16),
        n SimpleAggregateFunction(sum, UInt64),
        total SimpleAggregateFunction(sum, Float64),
        lo SimpleAggregateFunction(min, Float64),
        hi SimpleAggregateFunction(max, Float64)
      ) ENGINE = AggregatingMergeTree
      PARTITION BY toYYYYMMDD(minute)
      ORDER BY (community_id, metric, device_type, minute)
      TTL minute + INTERVAL 14 DAY DELETE`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1m_mv TO readings_1m AS
        SELECT toStartOfMinute(ts) AS minute, community_id, metric, device_type,
          any(street_id) AS street_id, any(district_id) AS district_id,
          count() AS n, sum(value) AS total, min(value) AS lo, max(value) AS hi
        FROM readings
        GROUP BY minute, community_id, metric, device_type`,
      `CREATE TABLE IF NOT EXISTS readings_1h (
        hour DateTime('UTC'),
        community_id UInt32,
        metric LowCardinality(String),
        device_type LowCardinality(String),
        street_id SimpleAggregateFunction(any, UInt32),
        district_id SimpleAggregateFunction(any, UInt16),
        n SimpleAggregateFunction(sum, UInt64),
        total SimpleAggregateFunction(sum, Float64),
        lo SimpleAggregateFunction(min, Float64),
        hi SimpleAggregateFunction(max, Float64)
      ) ENGINE = AggregatingMergeTree
      PARTITION BY toYYYYMM(hour)
      ORDER BY (community_id, metric, device_type, hour)
      TTL hour + INTERVAL 5 YEAR DELETE`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1h_mv TO readings_1h AS
        SELECT toStartOfHour(ts) AS hour, community_id, metric, device_type,
          any(street_id) AS street_id, any(district_id) AS district_id,
          count() AS n, sum(value) AS total, min(value) AS lo, max(value) AS hi
        FROM readings
        GROUP BY hour, community_id, metric, device_type`,
    ],
  },
  {
    version: 4,
    name: 'tickets and their history',
    statements: [
      `CREATE TABLE IF NOT EXISTS tickets (
        id String,
        version UInt64,
        created_at DateTime64(3, 'UTC'),
        updated_at DateTime64(3, 'UTC'),
        origin Enum8('proactive' = 1, 'complaint' = 2),
        status LowCardinality(String),
        category LowCardinality(String),
        catalogue_code LowCardinality(String),
        title String,
        description String,
        severity Enum8('info' = 1, 'warning' = 2, 'critical' = 3),
        micro_grid_id UInt32,
        community_id UInt32,
        street_id UInt32,
        district_id UInt16,
        lon Float64,
        lat Float64,
        unit LowCardinality(String),
        rule_id LowCardinality(String),
        dedup_key String,
        sign_due_at Nullable(DateTime64(3, 'UTC')),
        resolve_due_at Nullable(DateTime64(3, 'UTC')),
        linkage Array(LowCardinality(String)),
        evidence Array(String)
      ) ENGINE = ReplacingMergeTree(version)
      ORDER BY id`,
      `CREATE TABLE IF NOT EXISTS ticket_history (
        ticket_id String,
        ts DateTime64(3, 'UTC'),
        version UInt64,
        action LowCardinality(String),
        actor String,
        from_status LowCardinality(String),
        to_status LowCardinality(String),
        note String,
        payload String CODEC(ZSTD(3))
      ) ENGINE = MergeTree
      PARTITION BY toYYYYMM(ts)
      ORDER BY (ticket_id, ts, version)`,
    ],
  },
  {
    version: 5,
    name: 'twin start-up state: latest reading per device and metric, latest connectivity per device, ticket subjects',
    statements: [
      // The twin rebuilds its live state from these at start-up: 219,300
      // devices x a few metrics rows, instead of scanning the readings.
      `CREATE TABLE IF NOT EXISTS device_latest (
        device_id String,
        metric LowCardinality(String),
        ts DateTime64(3, 'UTC'),
        value Float64
      ) ENGINE = ReplacingMergeTree(ts)
      ORDER BY (device_id, metric)`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS device_latest_mv TO device_latest AS
        SELECT device_id, metric, ts, value FROM readings`,
      `CREATE TABLE IF NOT EXISTS device_connectivity (
        device_id String,
        ts DateTime64(3, 'UTC'),
        connected UInt8
      ) ENGINE = ReplacingMergeTree(ts)
      ORDER BY device_id`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS device_connectivity_mv TO device_connectivity AS
        SELECT source_id AS device_id, ts, kind = 'connected' AS connected FROM events
        WHERE source = 'device' AND kind IN ('connected', 'disconnected')`,
      `ALTER TABLE tickets ADD COLUMN IF NOT EXISTS device_id String DEFAULT '' AFTER rule_id`,
      `ALTER TABLE tickets ADD COLUMN IF NOT EXISTS camera_id String DEFAULT '' AFTER device_id`,
    ],
  },
  {
    version: 6,
    name: 'rules: ticket documents, rule state, operating modes, linkage outbox, complaints',
    statements: [
      // The whole ticket as the rules service keeps it, so a restart reads it
      // back as it was; the typed columns stay for queries.
      `ALTER TABLE tickets ADD COLUMN IF NOT EXISTS doc String DEFAULT '' CODEC(ZSTD(3))`,
      `ALTER TABLE tickets ADD COLUMN IF NOT EXISTS occurrences UInt32 DEFAULT 1`,
      `ALTER TABLE tickets ADD COLUMN IF NOT EXISTS supervised UInt8 DEFAULT 0`,
      // The grid a ticket counts in: its device's micro-grid, or the area it is about.
      `ALTER TABLE tickets ADD COLUMN IF NOT EXISTS grid_id UInt32 DEFAULT micro_grid_id`,
      // Durations and windows of the rules, so a restart does not forget
      // that the water has been high for four minutes already.
      `CREATE TABLE IF NOT EXISTS rule_state (
        key String,
        rule_id LowCardinality(String),
        version UInt64,
        deleted UInt8,
        state String,
        place String,
        subject String
      ) ENGINE = ReplacingMergeTree(version, deleted)
      ORDER BY key`,
      `CREATE TABLE IF NOT EXISTS operating_modes (
        id String,
        version UInt64,
        deleted UInt8,
        district_id UInt32,
        mode LowCardinality(String),
        starts_at DateTime64(3, 'UTC'),
        ends_at Nullable(DateTime64(3, 'UTC')),
        actor String,
        note String,
        created_at DateTime64(3, 'UTC')
      ) ENGINE = ReplacingMergeTree(version, deleted)
      ORDER BY id`,
      `CREATE TABLE IF NOT EXISTS linkage_outbox (
        id String,
        version UInt64,
        ticket_id String,
        target LowCardinality(String),
        status LowCardinality(String),
        attempts UInt32,
        last_error String,
        created_at DateTime64(3, 'UTC'),
        updated_at DateTime64(3, 'UTC'),
        payload String CODEC(ZSTD(3))
      ) ENGINE = ReplacingMergeTree(version)
      ORDER BY id`,
      `CREATE TABLE IF NOT EXISTS complaints (
        id String,
        received_at DateTime64(3, 'UTC'),
        service_code LowCardinality(String),
        description String,
        address String,
        lon Float64,
        lat Float64,
        micro_grid_id UInt32,
        community_id UInt32,
        district_id UInt32,
        matched_ticket String,
        lead_ms Int64,
        ticket_id String,
        doc String CODEC(ZSTD(3))
      ) ENGINE = ReplacingMergeTree
      ORDER BY id`,
    ],
  },
  {
    version: 7,
    name: 'bus positions: where each stored reading and event stands on the bus, so a consumer can replay what it had not judged',
    statements: [
      // The position of the write that stored the row (lib/bus/position.ts); 0 for rows stored before this migration.
      `ALTER TABLE readings ADD COLUMN IF NOT EXISTS bus_pos UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1))`,
      `ALTER TABLE readings ADD INDEX IF NOT EXISTS bus_pos_range bus_pos TYPE minmax GRANULARITY 1`,
      `ALTER TABLE events ADD COLUMN IF NOT EXISTS bus_pos UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1))`,
      `ALTER TABLE events ADD INDEX IF NOT EXISTS bus_pos_range bus_pos TYPE minmax GRANULARITY 1`,
    ],
  },
  {
    version: 8,
    name: "the twin's checkpoint: device_latest and device_connectivity written by the twin with its bus positions, no longer by views on every insert",
    statements: [
      // Each view wrote a part with every insert into readings or events, and
      // the store merged the whole table again with each (twin/state/checkpoint.ts).
      `DROP VIEW IF EXISTS device_latest_mv`,
      `DROP VIEW IF EXISTS device_connectivity_mv`,
      // One row per checkpoint: the positions (per stream) its state covers.
      // A few hundred kilobytes a year; kept, so a twin that has not run for
      // long still finds where to read on from.
      `CREATE TABLE IF NOT EXISTS twin_checkpoints (
        at DateTime64(3, 'UTC'),
        readings_pos UInt64,
        events_pos UInt64,
        devices UInt32
      ) ENGINE = MergeTree ORDER BY at`,
      // The views held everything stored until now; what is stored from now
      // on takes a position above this one (positions are microseconds of the clock).
      `INSERT INTO twin_checkpoints SELECT now64(3), toUInt64(toUnixTimestamp64Micro(now64(6))), toUInt64(toUnixTimestamp64Micro(now64(6))), 0`,
    ],
  },
  {
    version: 9,
    name: 'roll-ups written by the readings writer every few seconds, no longer by views on every insert',
    statements: [
      // Each view wrote a part with every insert into readings, merged again
      // and again into its largest part (store/rollups.ts).
      `DROP VIEW IF EXISTS readings_1m_mv`,
      `DROP VIEW IF EXISTS readings_1h_mv`,
      // One row per flush of the roll-ups: the readings position they cover.
      `CREATE TABLE IF NOT EXISTS rollup_positions (
        at DateTime64(3, 'UTC'),
        readings_pos UInt64
      ) ENGINE = MergeTree ORDER BY at`,
      // The views summed everything stored until now; what is stored from now on takes a position above this one.
      `INSERT INTO rollup_positions SELECT now64(3), toUInt64(toUnixTimestamp64Micro(now64(6)))`,
    ],
  },
  {
    version: 10,
    name: 'element streams remember the last inserts, so a writer retrying an insert whose answer was lost does not store it twice',
    statements: [
      // The writer sends each batch with an insert_deduplication_token it keeps
      // across retries (writer.ts); a plain MergeTree checks it only within this
      // window of recent inserts (a few minutes of the city's inserts). An insert
      // without a token (the twin's own alarm events) is checked by its data's
      // hash instead: the same rows inserted twice within the window count once.
      `ALTER TABLE readings MODIFY SETTING non_replicated_deduplication_window = 1000`,
      `ALTER TABLE events MODIFY SETTING non_replicated_deduplication_window = 1000`,
      `ALTER TABLE dead_letters MODIFY SETTING non_replicated_deduplication_window = 1000`,
    ],
  },
  {
    version: 11,
    name: 'the audit trail: every change made through the API, who made it, from where, and what it asked',
    statements: [
      `CREATE TABLE IF NOT EXISTS audit_log (
        ts DateTime64(3, 'UTC'),
        actor String,
        role LowCardinality(String),
        address String,
        method LowCardinality(String),
        route LowCardinality(String),
        target String,
        status UInt16,
        detail String CODEC(ZSTD(3))
      ) ENGINE = MergeTree
      PARTITION BY toYYYYMM(ts)
      ORDER BY (ts, actor)
      TTL toDateTime(ts) + INTERVAL 5 YEAR DELETE`,
    ],
  },
  {
    version: 12,
    name: 'device denials: devices whose access is revoked at runtime, and given back, with who did it and why',
    statements: [
      // One row per change; the latest per device is in force (ingest/mqtt/deny-list.ts).
      `CREATE TABLE IF NOT EXISTS device_denials (
        device_id String,
        denied UInt8,
        reason String,
        actor String,
        at DateTime64(3, 'UTC')
      ) ENGINE = ReplacingMergeTree(at)
      ORDER BY device_id`,
    ],
  },
  {
    version: 13,
    name: 'where the city came from: generated from a seed, or imported (citytwin city import) and kept by citytwin start',
    statements: [
      // '' for a generated city (its seed in city_seed); 'import: <name>' for an imported one.
      "ALTER TABLE grids ADD COLUMN IF NOT EXISTS city_source String DEFAULT ''",
    ],
  },
  {
    version: 14,
    name: 'devices provisioned while the system runs: credential versions, when each row was written, and the log of changes every gateway follows',
    statements: [
      // 0 until the device's credentials are first rotated (ingest/mqtt/tokens.ts).
      'ALTER TABLE devices ADD COLUMN IF NOT EXISTS credential_version UInt32 DEFAULT 0',
      // A change writes the device's new row before it deletes the old one: the latest row is the device.
      "ALTER TABLE devices ADD COLUMN IF NOT EXISTS changed_at DateTime64(3, 'UTC') DEFAULT 0",
      // One row per change, with the device as it is after it (registry/provision.ts); gateways read it to follow.
      `CREATE TABLE IF NOT EXISTS device_changes (
        at DateTime64(3, 'UTC'),
        device_id String,
        op LowCardinality(String),
        type LowCardinality(String),
        micro_grid_id UInt32,
        community_id UInt32,
        street_id UInt32,
        district_id UInt32,
        lon Float64,
        lat Float64,
        interval_s UInt32,
        credential_version UInt32,
        actor String,
        reason String
      ) ENGINE = MergeTree
      ORDER BY (at, device_id)`,
    ],
  },
  {
    version: 15,
    name: 'cameras provisioned while the system runs: when each row was written, and the log of changes the twin follows',
    statements: [
      // A change writes the camera's new row before it deletes the old one: the latest row is the camera.
      "ALTER TABLE cameras ADD COLUMN IF NOT EXISTS changed_at DateTime64(3, 'UTC') DEFAULT 0",
      // One row per change, with the camera as it is after it (registry/provision.ts).
      `CREATE TABLE IF NOT EXISTS camera_changes (
        at DateTime64(3, 'UTC'),
        camera_id String,
        op LowCardinality(String),
        kind LowCardinality(String),
        micro_grid_id UInt32,
        community_id UInt32,
        street_id UInt32,
        district_id UInt32,
        lon Float64,
        lat Float64,
        rtsp_url String,
        actor String,
        reason String
      ) ENGINE = MergeTree
      ORDER BY (at, camera_id)`,
    ],
  },
  {
    version: 16,
    name: 'the element streams merge up to ten parts of a size at once instead of five: a row is rewritten fewer times on its way to a large part',
    statements: [
      // merge_selector_base sets how many parts of about one size the merge
      // selector lets gather before it merges them. Every insert writes a
      // small part, and each merge rewrites its rows; merging in larger
      // groups makes fewer levels, so each row is rewritten fewer times.
      // Measured with the readings table's columns, order and codecs on
      // embedded chDB (2026-11-30, docs/benchmarks.md): at the city's 57,500
      // rows/s in 5 inserts a second, merges 3.89 -> 2.51 µs of CPU a row,
      // and all the store's threads 6.22 -> 4.99; at 12,500 rows/s, merges
      // 7.10 -> 4.26. A query meets a few more parts at most (5 active parts
      // either way after a minute); 20 saved little more and left 14.
      'ALTER TABLE readings MODIFY SETTING merge_selector_base = 10',
      'ALTER TABLE events MODIFY SETTING merge_selector_base = 10',
    ],
  },
  {
    version: 17,
    name: "the readings table compresses with LZ4 instead of ZSTD, DoubleDelta, Gorilla and Delta: every insert and every merge compresses, and at the city's rate that was a sixth of the store's CPU",
    statements: [
      // Every insert writes a part and every merge rewrites its rows, and
      // both compress each column. Measured with the readings table's
      // columns, order and settings on embedded chDB (2026-12-01,
      // docs/benchmarks.md), 2.5 rows a message in 2.5 inserts a second,
      // CPU of all the store's threads: at the city's 23,000 msg/s 15.4 and
      // 15.7 -> 12.5 and 13.4 µs a message; at 5,000 msg/s 21.4 -> 18.5 to
      // 19.9. On disk 12% more (16.7 bytes a row instead of 14.9): about 2 GB
      // more for the 1.2 billion rows the city keeps. Keeping DoubleDelta,
      // Gorilla and Delta before LZ4 cost the same CPU and took more disk
      // than LZ4 alone. Parts already written keep their codecs until merged.
      // CODEC(LZ4), not REMOVE CODEC: a server refuses to remove a codec a column no longer has, and every statement
      // here must bear running twice (two processes starting at once, a crash before the migration is recorded).
      `ALTER TABLE readings
        MODIFY COLUMN ts CODEC(LZ4),
        MODIFY COLUMN device_id CODEC(LZ4),
        MODIFY COLUMN value CODEC(LZ4),
        MODIFY COLUMN seq CODEC(LZ4),
        MODIFY COLUMN micro_grid_id CODEC(LZ4),
        MODIFY COLUMN street_id CODEC(LZ4),
        MODIFY COLUMN district_id CODEC(LZ4),
        MODIFY COLUMN received_at CODEC(LZ4),
        MODIFY COLUMN bus_pos CODEC(LZ4)`,
    ],
  },
  {
    version: 18,
    name: 'the roll-ups write a minute once it has ended, not at every flush while it lasts: each flush records the minutes it held back',
    statements: [
      // store/rollups.ts: readings of the minutes from open_from on, stored
      // after base_pos, were held in memory at that flush; a row written
      // before this migration held nothing back (every reading up to its
      // readings_pos was written).
      `ALTER TABLE rollup_positions
        ADD COLUMN IF NOT EXISTS open_from UInt32 DEFAULT 0,
        ADD COLUMN IF NOT EXISTS base_pos UInt64 DEFAULT readings_pos`,
    ],
  },
]

export function checksum(m: Migration): string {
  return createHash('sha256').update(m.statements.join('\n;\n')).digest('hex').slice(0, 16)
}

export interface MigrationReport {
  applied: number[]
  alreadyApplied: number[]
}

const log = logger('migrations')

/** Brings the schema up to date. Throws STORE_MIGRATION_DRIFT or STORE_MIGRATION_FAILED. */
export async function migrate(client: ClickHouseClient, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrationReport> {
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS schema_migrations (
      version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
    ) ENGINE = MergeTree ORDER BY version`,
  })
  const rows = await (await client.query({ query: 'SELECT version, checksum FROM schema_migrations ORDER BY version', format: 'JSONEachRow' }))
    .json<{ version: number; checksum: string }>()
  const done = new Map(rows.map((r) => [Number(r.version), r.checksum]))
  const report: MigrationReport = { applied: [], alreadyApplied: [] }
  for (const m of migrations) {
    const sum = checksum(m)
    const recorded = done.get(m.version)
    if (recorded !== undefined) {
      if (recorded !== sum) {
        throw new CitytwinError('STORE_MIGRATION_DRIFT',
          `migration ${m.version} (${m.name}) was applied with checksum ${recorded} but the code now has ${sum}; add a new migration instead of editing an applied one`)
      }
      report.alreadyApplied.push(m.version)
      continue
    }
    for (const [i, sql] of m.statements.entries()) {
      try {
        await client.command({ query: sql })
      } catch (e) {
        throw new CitytwinError('STORE_MIGRATION_FAILED', `migration ${m.version} (${m.name}), statement ${i + 1}: ${messageOf(e)}`, { cause: e })
      }
    }
    await client.insert({ table: 'schema_migrations', values: [{ version: m.version, name: m.name, checksum: sum }], format: 'JSONEachRow' })
    report.applied.push(m.version)
    log.info({ version: m.version, name: m.name }, 'migration applied')
  }
  const known = new Set(migrations.map((m) => m.version))
  const unknown = [...done.keys()].filter((v) => !known.has(v))
  if (unknown.length > 0) {
    throw new CitytwinError('STORE_MIGRATION_DRIFT', `the store has migrations ${unknown.join(', ')} that this version of citytwin does not know; it is older than the store`)
  }
  return report
}
