// Reading rule files: every *.yaml, *.yml and *.json file of a folder, each
// `{ rules: [...] }`. A bad file is refused whole, with every problem named
// by file and path (`waterlogging.yaml: rules[0].above: expected number`),
// and nothing of a refused set replaces the rules that run.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import type { z } from 'zod'
import { CitytwinError, issuePath, messageOf } from '../lib/errors.ts'
import { DEVICE_TYPE_BY_NAME } from '../registry/device-types.ts'
import type { Catalogue } from './catalogue/catalogue.ts'
import { ruleFileSchema, type Rule } from './schema.ts'

/** The rules shipped with citytwin (rules/files), used when no folder is configured. */
export const SHIPPED_RULES_DIR = new URL('./files/', import.meta.url).pathname

const RULE_FILE = /\.(ya?ml|json)$/i

function zodProblems(file: string, e: z.ZodError): string[] {
  return e.issues.map((i) => `${file}: ${issuePath(i.path) || '(file)'}: ${i.message}`)
}

/** Parses one rule file's text; throws RULES_BAD_FILE naming every problem. */
export function parseRuleFile(name: string, text: string): Rule[] {
  let raw: unknown
  try {
    raw = /\.json$/i.test(name) ? JSON.parse(text) : parseYaml(text)
  } catch (e) {
    throw new CitytwinError('RULES_BAD_FILE', `${name}: not valid ${/\.json$/i.test(name) ? 'JSON' : 'YAML'}: ${messageOf(e)}`, { details: { file: name } })
  }
  const parsed = ruleFileSchema.safeParse(raw)
  if (!parsed.success) {
    const problems = zodProblems(name, parsed.error)
    throw new CitytwinError('RULES_BAD_FILE', problems.join('\n'), { details: { file: name, problems } })
  }
  const problems: string[] = []
  parsed.data.rules.forEach((r, i) => {
    const at = `${name}: rules[${i}]`
    if (r.kind === 'threshold' && (r.above === undefined) === (r.below === undefined)) problems.push(`${at}: give exactly one of above and below`)
    if (r.kind === 'threshold' && r.clear !== undefined && (r.above !== undefined ? r.clear > r.above : r.clear < (r.below ?? 0))) problems.push(`${at}.clear: must be on the normal side of the threshold`)
    if (r.kind === 'rate' && (r.risePerMin === undefined) === (r.fallPerMin === undefined)) problems.push(`${at}: give exactly one of risePerMin and fallPerMin`)
    if (r.kind === 'threshold' || r.kind === 'rate') {
      for (const t of r.deviceTypes) {
        const spec = DEVICE_TYPE_BY_NAME.get(t)
        if (spec && !spec.metrics.some((m) => m.name === r.metric)) problems.push(`${at}.metric: ${t} devices send no metric "${r.metric}" (they send ${spec.metrics.map((m) => m.name).join(', ')})`)
      }
    }
  })
  if (problems.length > 0) throw new CitytwinError('RULES_BAD_FILE', problems.join('\n'), { details: { file: name, problems } })
  return parsed.data.rules
}

/** Checks a whole rule set: ids unique, catalogue codes known, references resolved. */
export function checkRuleSet(rules: readonly Rule[], catalogue: Catalogue): void {
  const problems: string[] = []
  const byId = new Map<string, Rule>()
  for (const r of rules) {
    if (byId.has(r.id)) problems.push(`rule ${r.id}: the id is used twice`)
    byId.set(r.id, r)
  }
  for (const r of rules) {
    if (r.ticket && !catalogue.type(r.ticketType)) problems.push(`rule ${r.id}.ticketType: "${r.ticketType}" is not in the dispatch catalogue`)
    if (r.kind === 'composite') {
      for (const p of r.parts) {
        if (!('rule' in p)) continue
        const target = byId.get(p.rule)
        if (!target) problems.push(`rule ${r.id}.parts: no rule "${p.rule}"`)
        else if (target.kind === 'composite') problems.push(`rule ${r.id}.parts: "${p.rule}" is itself composite; parts must be simple rules or camera events`)
      }
    }
    if (r.kind === 'silence') {
      for (const id of r.suppressedBy) {
        if (byId.get(id)?.kind !== 'area-silence') problems.push(`rule ${r.id}.suppressedBy: "${id}" is not an area-silence rule`)
      }
    }
  }
  if (problems.length > 0) throw new CitytwinError('RULES_BAD_FILE', problems.join('\n'), { details: { problems } })
}

/** Every rule of a folder, checked as one set. */
export function loadRuleDir(dir: string, catalogue: Catalogue): Rule[] {
  let names: string[]
  try {
    names = readdirSync(dir).filter((n) => RULE_FILE.test(n)).sort()
  } catch (e) {
    throw new CitytwinError('RULES_BAD_FILE', `cannot read the rules folder ${dir}: ${messageOf(e)}`, { details: { dir } })
  }
  const problems: string[] = []
  const rules: Rule[] = []
  for (const n of names) {
    try {
      rules.push(...parseRuleFile(n, readFileSync(join(dir, n), 'utf8')))
    } catch (e) {
      problems.push(messageOf(e))
    }
  }
  if (problems.length > 0) throw new CitytwinError('RULES_BAD_FILE', problems.join('\n'), { details: { dir } })
  checkRuleSet(rules, catalogue)
  return rules
}
