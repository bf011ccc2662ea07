// One zod schema per component (CONVENTIONS.md): `.strict()`, every field
// with a default and a `.describe()`, option names carrying their unit.
// Values come from, lowest to highest precedence: the schema's defaults, a
// JSON config file (`--config` or CITYTWIN_CONFIG, one object per
// component), environment variables, and command-line flags. Parsed once at
// start-up; a bad value stops the process naming the field and the reason.
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { CitytwinError, messageOf } from './errors.ts'

export interface ComponentConfig<S extends z.ZodObject> {
  /** Component name: the key in the config file and the env-var infix. */
  readonly name: string
  readonly schema: S
  /** Extra environment variable names for a field, e.g. CLICKHOUSE_URL. */
  readonly envAliases: Readonly<Partial<Record<keyof z.infer<S> & string, readonly string[]>>>
}

export function defineConfig<S extends z.ZodObject>(
  name: string,
  schema: S,
  envAliases: Partial<Record<keyof z.infer<S> & string, readonly string[]>> = {},
): ComponentConfig<S> {
  return { name, schema, envAliases }
}

export interface ConfigSources {
  env?: NodeJS.ProcessEnv
  /** Parsed config file: `{ "<component>": { ...fields } }`. */
  file?: Record<string, unknown>
  /** Command-line values, already named like the fields. Undefined values are ignored. */
  overrides?: Record<string, unknown>
  /** Defaults of this command, for fields neither the file, the environment nor `overrides` set (e.g. open reads for the demo city). */
  defaults?: Record<string, unknown>
}

/** `flushIntervalMs` -> `FLUSH_INTERVAL_MS`. */
export function envName(component: string, field: string): string {
  const snake = (s: string): string => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/[^A-Za-z0-9]+/g, '_').toUpperCase()
  return `CITYTWIN_${snake(component)}_${snake(field)}`
}

interface FieldDoc {
  field: string
  type: string
  default: unknown
  description: string
  env: string[]
}

export function describeConfig<S extends z.ZodObject>(cfg: ComponentConfig<S>): FieldDoc[] {
  const json = z.toJSONSchema(cfg.schema, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, { type?: string | string[]; default?: unknown; description?: string; enum?: unknown[] }>
  }
  return Object.entries(json.properties ?? {}).map(([field, p]) => ({
    field,
    type: p.enum ? p.enum.map((v) => JSON.stringify(v)).join(' | ') : Array.isArray(p.type) ? p.type.join(' | ') : (p.type ?? 'any'),
    default: p.default,
    description: p.description ?? '',
    env: [envName(cfg.name, field), ...((cfg.envAliases as Record<string, readonly string[] | undefined>)[field] ?? [])],
  }))
}

function fromEnvString(raw: string, type: string): unknown {
  if (type.includes('number') || type.includes('integer')) {
    const n = Number(raw)
    return raw.trim() === '' || Number.isNaN(n) ? raw : n
  }
  if (type.includes('boolean')) {
    if (/^(1|true|yes|on)$/i.test(raw)) return true
    if (/^(0|false|no|off)$/i.test(raw)) return false
    return raw
  }
  if (type.includes('array') || type.includes('object')) {
    try {
      return JSON.parse(raw) as unknown
    } catch {
      return raw // left as text so the schema reports the field, not a JSON error
    }
  }
  return raw
}

export function loadConfig<S extends z.ZodObject>(cfg: ComponentConfig<S>, sources: ConfigSources = {}): z.infer<S> {
  const env = sources.env ?? process.env
  const merged: Record<string, unknown> = {}
  const fromFile = sources.file?.[cfg.name]
  if (fromFile !== undefined) {
    if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) {
      throw new CitytwinError('CONFIG_INVALID', `config file: "${cfg.name}" must be an object`, { details: { path: cfg.name } })
    }
    Object.assign(merged, fromFile)
  }
  for (const doc of describeConfig(cfg)) {
    for (const name of doc.env) {
      const raw = env[name]
      if (raw !== undefined) {
        merged[doc.field] = fromEnvString(raw, doc.type)
        break
      }
    }
  }
  for (const [k, v] of Object.entries(sources.overrides ?? {})) if (v !== undefined) merged[k] = v
  for (const [k, v] of Object.entries(sources.defaults ?? {})) if (v !== undefined && merged[k] === undefined) merged[k] = v
  const parsed = cfg.schema.safeParse(merged)
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const path = [cfg.name, ...i.path.map(String)].join('.')
      return `${path}: ${i.message}`
    })
    throw new CitytwinError('CONFIG_INVALID', `invalid configuration:\n  ${lines.join('\n  ')}`, {
      details: { issues: parsed.error.issues.map((i) => ({ path: [cfg.name, ...i.path.map(String)].join('.'), message: i.message })) },
    })
  }
  return parsed.data
}

/** Reads the JSON config file named by `path` or CITYTWIN_CONFIG; `{}` when neither is set. */
export function readConfigFile(path: string | undefined = process.env.CITYTWIN_CONFIG): Record<string, unknown> {
  if (!path) return {}
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new CitytwinError('CONFIG_FILE_UNREADABLE', `cannot read config file ${path}: ${messageOf(e)}`, { cause: e })
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    throw new CitytwinError('CONFIG_FILE_UNREADABLE', `config file ${path} is not valid JSON: ${messageOf(e)}`, { cause: e })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CitytwinError('CONFIG_FILE_UNREADABLE', `config file ${path} must hold a JSON object keyed by component name`)
  }
  return value as Record<string, unknown>
}

/** Markdown table of every option of the given components: the generated configuration reference. */
export function configReference(configs: readonly ComponentConfig<z.ZodObject>[]): string {
  const out: string[] = ['# Configuration reference', '', 'Generated from the zod schemas by `citytwin config docs`; do not edit by hand.', '',
    'Precedence, lowest first: defaults, the JSON config file (`--config FILE` or `CITYTWIN_CONFIG`), environment variables, command-line flags.', '']
  for (const cfg of configs) {
    out.push(`## \`${cfg.name}\``, '', '| option | type | default | environment | description |', '| --- | --- | --- | --- | --- |')
    for (const d of describeConfig(cfg)) {
      const def = d.default === undefined ? '' : `\`${JSON.stringify(d.default)}\``
      out.push(`| \`${d.field}\` | ${d.type.replace(/\|/g, '\\|')} | ${def} | ${d.env.map((e) => `\`${e}\``).join(', ')} | ${d.description} |`)
    }
    out.push('')
  }
  return out.join('\n')
}
