// Opens the store. All access goes through @clickhouse/client; only how it is
// connected differs:
//   server   - CLICKHOUSE_URL is set: a ClickHouse server over HTTP;
//   embedded - chDB in this process, on the data directory;
//   owner    - another process of ours holds the embedded store (chDB lets one
//              process open a directory) and serves it over loopback HTTP in
//              ClickHouse's own protocol (see owner.ts), so this process uses
//              the ordinary HTTP client against it.
// One schema, one SQL dialect, one code path.
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client'
import type { ChdbConnection } from 'chdb/connection'
import { ChdbPool } from './pool.ts'
import { sendRawInserts } from './insert-rows.ts'
import { CitytwinError, messageOf } from '../lib/errors.ts'
import { logger } from '../lib/log.ts'
import type { StoreConfig } from './config.ts'
import { processAlive } from '../lib/pid.ts'

export type StoreMode = 'server' | 'embedded' | 'owner'

export interface Store {
  readonly client: ClickHouseClient
  readonly mode: StoreMode
  readonly database: string
  /** The in-process chDB connection, in embedded mode only (the owner server forwards to it). */
  readonly chdb?: ChdbPool
  readonly dataDir: string
  close(): Promise<void>
}

export interface OwnerInfo {
  pid: number
  url: string
  token: string
  database: string
  startedAt: string
  /**
   * The command whose processes hold the city in memory (the twin, the
   * gateways' registries, the rules): while it runs, the city must not be
   * replaced under it. Absent for an owner that only serves the store.
   */
  cityHeldBy?: string
}

const log = logger('store')

export function ownerFile(dataDir: string): string {
  return join(resolve(dataDir), 'citytwin-owner.json')
}

export function readOwnerInfo(dataDir: string): OwnerInfo | undefined {
  let text: string
  try {
    text = readFileSync(ownerFile(dataDir), 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new CitytwinError('STORE_UNAVAILABLE', `cannot read ${ownerFile(dataDir)}: ${messageOf(e)}`, { cause: e })
  }
  try {
    return JSON.parse(text) as OwnerInfo
  } catch (e) {
    log.warn({ err: e, file: ownerFile(dataDir) }, 'ignoring unreadable store owner file')
    return undefined
  }
}


const clientDefaults = (cfg: StoreConfig) => ({
  request_timeout: cfg.requestTimeoutMs,
  // The writer batches; the client must not hold many idle sockets per process.
  max_open_connections: 8,
  // The client's own logger prints unstructured lines; every failure reaches
  // our code as an error, which the writer and the owner log as JSON with
  // their context, so the client's copy is switched off.
  log: { level: ClickHouseLogLevel.OFF },
})

/** Opens the store described by `cfg`. In embedded mode, uses a running owner when there is one. */
export async function openStore(cfg: StoreConfig): Promise<Store> {
  if (cfg.url) return openServer(cfg)
  const dataDir = resolve(cfg.dataDir)
  const owner = readOwnerInfo(dataDir)
  if (owner && owner.pid !== process.pid) {
    if (processAlive(owner.pid)) return openViaOwner(cfg, dataDir, owner)
    log.info({ pid: owner.pid }, 'removing the owner file of a process that is gone')
    rmSync(ownerFile(dataDir), { force: true })
  }
  return openEmbedded(cfg, dataDir)
}

async function openServer(cfg: StoreConfig): Promise<Store> {
  const common = { url: cfg.url, username: cfg.username, password: cfg.password, ...clientDefaults(cfg) }
  const bootstrap = createClient(common)
  try {
    await bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${cfg.database}` })
  } catch (e) {
    throw new CitytwinError('STORE_UNAVAILABLE', `cannot reach ClickHouse at ${cfg.url}: ${messageOf(e)}`, { cause: e })
  } finally {
    await bootstrap.close()
  }
  const client = createClient({ ...common, database: cfg.database })
  return { client, mode: 'server', database: cfg.database, dataDir: resolve(cfg.dataDir), close: () => client.close() }
}

async function openEmbedded(cfg: StoreConfig, dataDir: string): Promise<Store> {
  mkdirSync(dataDir, { recursive: true })
  // Loaded only here: libchdb is 140 MB of mapped code, which a process that
  // reaches the store over HTTP (a gateway worker, say) should not carry.
  const { createChdbConnection } = await import('chdb/connection')
  const connections: ChdbConnection[] = []
  try {
    // The first opens the directory (and finds it locked, if it is); the others share it.
    for (let i = 0; i < cfg.connections; i++) connections.push(createChdbConnection({ path: dataDir }))
  } catch (e) {
    await Promise.all(connections.map((c) => c.close()))
    const holder = lockHolder(dataDir)
    if (holder !== undefined) {
      throw new CitytwinError('STORE_LOCKED',
        `the store in ${dataDir} is open in another process${holder ? ` (pid ${holder})` : ''} that does not serve it. Stop that process, ` +
        'or run this command while `citytwin start` runs (it serves the store to other processes), or use another --data-dir.', { cause: e })
    }
    throw new CitytwinError('STORE_UNAVAILABLE', `cannot open the embedded store in ${dataDir}: ${messageOf(e)}`, { cause: e })
  }
  // @clickhouse/client bundles its own copy of the client-common types, so the
  // compiler sees two structurally equal but distinct ClickHouseSettings; the
  // runtime contract is the same (chdb/connection implements it verbatim).
  const [first] = connections as [ChdbConnection]
  await first.command({ query: `CREATE DATABASE IF NOT EXISTS ${cfg.database}` })
  // A chDB session keeps its current database across statements: each is told.
  for (const c of connections) await c.command({ query: `USE ${cfg.database}` })
  const chdb = new ChdbPool(connections)
  const connection = chdb as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection']
  const client = createClient({ connection, ...clientDefaults(cfg) })
  // Encoded inserts go to the engine as bytes (store/insert-rows.ts). They skip the client's settings, which
  // chDB would apply with SET: clientDefaults sets none; one that an insert needs belongs in EncodedInsert.settings.
  sendRawInserts(client, chdb)
  return { client, mode: 'embedded', chdb, database: cfg.database, dataDir, close: () => client.close() }
}

/**
 * chDB, like a ClickHouse server, holds a lock on `<dataDir>/status` and
 * writes its pid there while the directory is open; the file goes when it
 * closes. Returns the holder's pid (0 if unreadable) when another live process
 * holds it, undefined otherwise.
 */
function lockHolder(dataDir: string): number | undefined {
  let text: string
  try {
    text = readFileSync(join(dataDir, 'status'), 'utf8')
  } catch (e) {
    // No status file: nobody holds the directory. Unreadable: assume someone does.
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : 0
  }
  const pid = Number(/PID:\s*(\d+)/.exec(text)?.[1] ?? 0)
  if (pid === 0) return 0
  return pid !== process.pid && processAlive(pid) ? pid : undefined
}

async function openViaOwner(cfg: StoreConfig, dataDir: string, owner: OwnerInfo): Promise<Store> {
  if (owner.database !== cfg.database) {
    throw new CitytwinError('STORE_UNAVAILABLE', `the process that owns ${dataDir} serves database "${owner.database}", not "${cfg.database}"`)
  }
  const client = createClient({ url: owner.url, username: 'citytwin', password: owner.token, database: cfg.database, ...clientDefaults(cfg) })
  const ping = await client.ping()
  if (!ping.success) {
    await client.close()
    throw new CitytwinError('STORE_LOCKED', `process ${owner.pid} owns the store in ${dataDir} but does not answer at ${owner.url}: ${messageOf(ping.error)}`, { cause: ping.error })
  }
  log.debug({ owner: owner.pid, url: owner.url }, 'using the store through its owner process')
  return { client, mode: 'owner', database: cfg.database, dataDir, close: () => client.close() }
}
