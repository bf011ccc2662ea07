// The rule file format: YAML or JSON, `{ rules: [...] }`, validated by zod.
// Each rule names its kind, the ticket type it raises (a dispatch catalogue
// code), its parameters, and per operating mode what changes (a threshold,
// a duration, or whether it runs at all).
import { z } from 'zod'
import { DEVICE_TYPES_LIST } from '../registry/device-types.ts'
import { AREA_LEVELS, CAMERA_EVENTS, MODES } from './kinds/types.ts'

const deviceType = z.enum(DEVICE_TYPES_LIST)
const severity = z.enum(['info', 'warning', 'critical'])
const seconds = z.number().min(0)
const hours = z.tuple([z.number().int().min(0).max(23), z.number().int().min(0).max(24)]).describe('Local hours [from, to); wraps past midnight when from > to, e.g. [22, 6] is night.')

const thresholdParams = z.strictObject({
  deviceTypes: z.array(deviceType).min(1).describe('Device types the rule reads.'),
  metric: z.string().min(1).describe('Metric of those types, as sent in telemetry values.'),
  above: z.number().optional().describe('Raise when the value stays above this.'),
  below: z.number().optional().describe('Raise when the value stays below this.'),
  clear: z.number().optional().describe('Hysteresis: the signal ends only once the value is back beyond this (below it for above, above it for below). Default: 10 percent of the threshold back from it.'),
  forS: seconds.default(0).describe('How long, in seconds, the condition must hold before the rule raises.'),
})

const rateParams = z.strictObject({
  deviceTypes: z.array(deviceType).min(1),
  metric: z.string().min(1),
  risePerMin: z.number().positive().optional().describe('Raise when the value rises faster than this per minute over the window.'),
  fallPerMin: z.number().positive().optional().describe('Raise when the value falls faster than this per minute over the window.'),
  windowS: seconds.default(60).describe('Window over which the rate is measured, in seconds.'),
  minSamples: z.number().int().min(2).default(3).describe('Readings needed in the window before a rate is believed (they must also span half the window).'),
  minValue: z.number().optional().describe('Only raise while the value is at least this (a rise within normal levels is noise).'),
  maxValue: z.number().optional().describe('Only raise while the value is at most this.'),
})

const silenceParams = z.strictObject({
  deviceTypes: z.array(deviceType).default([]).describe('Device types watched; empty: all.'),
  afterIntervals: z.number().min(1).default(6).describe('Raise once a device has been silent for this many of its reporting intervals.'),
  minSilentS: seconds.default(0).describe('And for at least this many seconds, whatever its interval: a device that misses a few 5-second readings is not worth a field visit, and a silence the system itself caused (ingest degraded) shows within that time and holds the rule.'),
  suppressedBy: z.array(z.string()).default([]).describe('Area-silence rules: while one is raised for the area a device stands in, its own silence raises no ticket (one area outage, not hundreds of device tickets).'),
})

const areaSilenceParams = z.strictObject({
  deviceTypes: z.array(deviceType).default([]),
  level: z.enum(AREA_LEVELS).default('community').describe('Grid level the share is counted at.'),
  percent: z.number().gt(0).max(100).describe('Share of the grid devices that must go silent within the window.'),
  windowS: seconds.default(300).describe('Window in which they must go silent, in seconds.'),
  minDevices: z.number().int().min(1).default(5).describe('Fewest silent devices that make an outage, whatever the share.'),
  holdS: seconds.default(60).describe('How long the share must hold before the outage is raised, and how long most devices must be back before it clears, in seconds. Meanwhile the silence rules it suppresses wait for it. Starvation under overload moves from device to device in seconds; a power cut holds.'),
})

const countParams = z.strictObject({
  source: z.enum(['device-event', 'camera-event']),
  events: z.array(z.string().min(1)).min(1).describe('Event names counted.'),
  deviceTypes: z.array(deviceType).default([]),
  count: z.number().int().min(1).describe('Events in the window that raise.'),
  windowS: seconds.positive().describe('Sliding window, in seconds.'),
  per: z.enum(['subject', ...AREA_LEVELS]).default('micro').describe('What is counted separately: each device or camera, or each grid at a level.'),
  hours: hours.optional().describe('Only events at these local hours count.'),
  specialKinds: z.array(z.string()).default([]).describe('Only events inside special grids of these kinds (park, school...) count; empty: anywhere.'),
})

const compositePart = z.union([
  z.strictObject({ rule: z.string().min(1).describe('Another rule, whose signal must be on.') }),
  z.strictObject({ cameraEvent: z.enum(CAMERA_EVENTS).describe('A camera event in the same grid.') }),
])

const compositeParams = z.strictObject({
  parts: z.array(compositePart).min(2).describe('Every part must be seen in the same grid within the window.'),
  level: z.enum(AREA_LEVELS).default('micro'),
  windowS: seconds.positive().default(300),
})

const cameraParams = z.strictObject({
  conditions: z.array(z.enum(['offline', 'black', 'frozen', 'obstructed'])).min(1).describe('Camera conditions that raise.'),
})


/** What every rule has, whatever its kind. */
const common = {
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lowercase letters, digits, - and _').describe('Stable rule id; part of every ticket key.'),
  title: z.string().min(1).describe('Ticket title.'),
  ticketType: z.string().min(1).describe('Dispatch catalogue code of the tickets it raises.'),
  severity: severity.optional().describe('Ticket severity; default: the catalogue type severity.'),
  ticket: z.boolean().default(true).describe('false: a signal for composite rules only, raising no ticket.'),
  enabled: z.boolean().default(true),
}

/** Per operating mode, what changes: any parameter of the kind, and enabled. */
const modesOf = <S extends z.ZodRawShape>(params: z.ZodObject<S>) =>
  z.partialRecord(z.enum(MODES), params.partial().extend({ enabled: z.boolean().optional() })).default({})

export const ruleSchemas = {
  threshold: thresholdParams.extend({ ...common, kind: z.literal('threshold'), modes: modesOf(thresholdParams) }),
  rate: rateParams.extend({ ...common, kind: z.literal('rate'), modes: modesOf(rateParams) }),
  silence: silenceParams.extend({ ...common, kind: z.literal('silence'), modes: modesOf(silenceParams) }),
  'area-silence': areaSilenceParams.extend({ ...common, kind: z.literal('area-silence'), modes: modesOf(areaSilenceParams) }),
  count: countParams.extend({ ...common, kind: z.literal('count'), modes: modesOf(countParams) }),
  composite: compositeParams.extend({ ...common, kind: z.literal('composite'), modes: modesOf(compositeParams) }),
  camera: cameraParams.extend({ ...common, kind: z.literal('camera'), modes: modesOf(cameraParams) }),
}

export const anyRuleSchema = z.discriminatedUnion('kind', [
  ruleSchemas.threshold, ruleSchemas.rate, ruleSchemas.silence, ruleSchemas['area-silence'],
  ruleSchemas.count, ruleSchemas.composite, ruleSchemas.camera,
])

export const ruleFileSchema = z.strictObject({ rules: z.array(anyRuleSchema) })

export type Rule = z.infer<typeof anyRuleSchema>
export type RuleKind = Rule['kind']
export type RuleOf<K extends RuleKind> = Extract<Rule, { kind: K }>
export type ThresholdRule = RuleOf<'threshold'>
export type RateRule = RuleOf<'rate'>
export type SilenceRule = RuleOf<'silence'>
export type AreaSilenceRule = RuleOf<'area-silence'>
export type CountRule = RuleOf<'count'>
export type CompositeRule = RuleOf<'composite'>
export type CameraRule = RuleOf<'camera'>
