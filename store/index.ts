// The store, in one import: open it (embedded, server or through the owner
// process), bring the schema up to date, and write to it.
import { loadConfig, type ConfigSources } from '../lib/config.ts'
import { openStore, type Store } from './client.ts'
import { storeConfig, writerConfig, type StoreConfig, type WriterConfig } from './config.ts'
import { migrate } from './migrations.ts'

export { openStore, type Store } from './client.ts'
export { storeConfig, writerConfig, type StoreConfig, type WriterConfig } from './config.ts'
export { migrate, MIGRATIONS } from './migrations.ts'
export { StoreWriter, type Row, type WriteOutcome, type DeadLetter, type DeadLetterSink } from './writer.ts'
export { DeadLetterWriter } from './dead-letters.ts'
export { Rollups, RollupSums } from './rollups.ts'
export { StoreOwner } from './owner.ts'

export interface StoreSetup {
  store: Store
  storeCfg: StoreConfig
  writerCfg: WriterConfig
}

/** Loads the store and writer config, opens the store and applies pending migrations. */
export async function openMigratedStore(sources: ConfigSources, overrides: Partial<StoreConfig> = {}): Promise<StoreSetup> {
  const storeCfg = loadConfig(storeConfig, { ...sources, overrides: { ...sources.overrides, ...overrides } })
  const writerCfg = loadConfig(writerConfig, { ...sources, overrides: {} })
  const store = await openStore(storeCfg)
  try {
    await migrate(store.client)
  } catch (e) {
    await store.close()
    throw e
  }
  return { store, storeCfg, writerCfg }
}

/** Opens and migrates the store, runs `fn` with it, and closes it whatever happens: the shape of every short CLI command. */
export async function withStore<T>(sources: ConfigSources, fn: (setup: StoreSetup) => Promise<T>): Promise<T> {
  const setup = await openMigratedStore(sources)
  try {
    return await fn(setup)
  } finally {
    await setup.store.close()
  }
}
