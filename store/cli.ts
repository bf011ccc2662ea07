// `citytwin store ...`: schema and ad-hoc queries, for operators.
import type { Command } from '../lib/command.ts'
import { UsageError } from '../lib/command.ts'
import { loadConfig } from '../lib/config.ts'
import { openStore } from './client.ts'
import { storeConfig } from './config.ts'
import { MIGRATIONS, migrate } from './migrations.ts'
import { withStore } from './index.ts'

export const storeCommands: Command[] = [
  {
    name: 'store migrate',
    summary: 'Apply pending schema migrations to the store and list them',
    async run({ configFile, stdout }) {
      const store = await openStore(loadConfig(storeConfig, { file: configFile }))
      try {
        const report = await migrate(store.client)
        stdout.write(`store: ${store.mode} (${store.mode === 'server' ? 'ClickHouse server' : store.dataDir}), database ${store.database}\n`)
        for (const m of MIGRATIONS) {
          const state = report.applied.includes(m.version) ? 'applied now' : 'already applied'
          stdout.write(`  ${String(m.version).padStart(3)}  ${m.name}: ${state}\n`)
        }
      } finally {
        await store.close()
      }
    },
  },
  {
    name: 'store status',
    summary: 'Show how the store is reached and the size of each table',
    async run({ configFile, stdout }) {
      return withStore({ file: configFile }, async ({ store }) => {
        const rs = await store.client.query({
          query: `SELECT name, total_rows AS rows, formatReadableSize(total_bytes) AS size FROM system.tables
                  WHERE database = currentDatabase() AND engine NOT IN ('MaterializedView') AND NOT name LIKE '.inner%' ORDER BY name`,
          format: 'JSONEachRow',
        })
        const tables = await rs.json<{ name: string; rows: string | null; size: string }>()
        stdout.write(`store: ${store.mode} (${store.mode === 'server' ? 'ClickHouse server' : store.dataDir}), database ${store.database}\n`)
        for (const t of tables) stdout.write(`  ${t.name.padEnd(20)} ${String(t.rows ?? 0).padStart(14)} rows  ${t.size}\n`)
      })
    },
  },
  {
    name: 'store query',
    summary: 'Run one SQL statement against the store and print the result (JSON lines for SELECT)',
    args: '<sql>',
    async run({ configFile, positionals, stdout }) {
      const sql = positionals.join(' ').trim()
      if (!sql) throw new UsageError('give the SQL to run, e.g. citytwin store query "SELECT count() FROM devices"')
      return withStore({ file: configFile }, async ({ store }) => {
        const rs = await store.client.exec({ query: /^\s*(SELECT|WITH|SHOW|DESCRIBE|EXPLAIN)\b/i.test(sql) && !/\bFORMAT\s+\w+\s*$/i.test(sql) ? `${sql} FORMAT JSONEachRow` : sql })
        for await (const chunk of rs.stream) stdout.write(chunk as Buffer)
      })
    },
  },
]
