import { z } from 'zod'
import { defineConfig } from '../lib/config.ts'

const factors = z.strictObject({
  sign: z.number().positive().describe('Multiplier of the catalogue time to sign.'),
  resolve: z.number().positive().describe('Multiplier of the catalogue time to resolve.'),
})

export const rulesConfig = defineConfig(
  'rules',
  z.strictObject({
    dir: z.string().default('').describe('Folder of rule files (*.yaml, *.yml, *.json), watched and reloaded on change. Empty: the rules shipped in rules/files.'),
    catalogueFile: z.string().default('').describe('Dispatch catalogue JSON. Empty: the catalogue shipped in rules/catalogue/catalogue.json.'),
    tickMs: z.number().int().min(100).default(1_000).describe('How often windows expire, silences come due, SLA timers run and rule state is stored, in milliseconds.'),
    replayMaxMs: z.number().int().min(0).default(900_000).describe('After a restart, or after falling too far behind on the bus, the rules judge again the readings and device events stored after the position they had saved, going back at most this many milliseconds (older ones are counted and logged, not judged). 0: never replay.'),
    maxPendingChanges: z.number().int().min(1).default(10_000).describe('Most ticket changes kept in memory while the store refuses them. At this many the rules take nothing more from the bus until the store has them (they fall behind on the bus, and judge from the store what it dropped once the store is back), so a long store outage costs no memory; /healthz reports not ok meanwhile.'),
    utcOffsetMin: z.number().int().min(-720).max(840).default(480).describe('Local time offset from UTC in minutes (rules about night hours, ticket ids by day). 480: China Standard Time.'),
    linkWindowMs: z.number().int().min(0).default(1_800_000).describe('Tickets raised in the same community grid within this window are linked, in milliseconds.'),
    autoCloseAfterMs: z.number().int().min(0).default(3_600_000).describe('A verified ticket closes by itself after this follow-up window, in milliseconds.'),
    keepDoneMs: z.number().int().min(0).default(86_400_000).describe('Done tickets stay in memory this long (complaints are matched against them), in milliseconds.'),
    slaFactors: z.strictObject({ normal: factors, holiday: factors, major_event: factors, emergency: factors })
      .default({ normal: { sign: 1, resolve: 1 }, holiday: { sign: 1, resolve: 1.5 }, major_event: { sign: 0.6, resolve: 0.75 }, emergency: { sign: 0.4, resolve: 0.5 } })
      .describe('Per operating mode, multipliers of the catalogue SLAs (an emergency shortens them).'),
    linkageWebhookUrl: z.string().default('').describe('110/119/120 linkage: URL that gets each push as a JSON POST. Empty: pushes are logged.'),
    linkageWebhookToken: z.string().default('').describe('Bearer token sent with linkage pushes.'),
    linkageTimeoutMs: z.number().int().min(100).default(5_000).describe('Timeout of one linkage push, in milliseconds.'),
    linkageMaxAttempts: z.number().int().min(1).default(10).describe('Attempts before a linkage push is marked failed.'),
    matchRadiusM: z.number().min(0).default(500).describe('A complaint matches a proactive ticket of its type in the same community grid or within this distance, in metres.'),
    matchWindowMs: z.number().int().min(0).default(86_400_000).describe('A complaint matches a ticket raised at most this long before it, in milliseconds.'),
    open311ApiKeys: z.string().default('').describe('Comma-separated API keys that may POST Open311 service requests (the 12345 platform). Empty: POST needs an operator bearer token instead.'),
  }),
  { linkageWebhookToken: ['CITYTWIN_LINKAGE_TOKEN'] },
)

export type RulesConfig = ReturnType<typeof rulesConfig.schema.parse>
