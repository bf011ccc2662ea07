// Rule files: what a bad file is told, file by file and path by path, and
// the checks across a whole set (unique ids, known ticket types, composite
// parts and silence suppressors that exist).
import { writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CitytwinError } from '../../lib/errors.ts'
import { loadCatalogue } from '../../rules/catalogue/catalogue.ts'
import { loadRuleDir, parseRuleFile, SHIPPED_RULES_DIR } from '../../rules/loader.ts'
import { tempDir } from '../helpers.ts'

const catalogue = loadCatalogue()

function problems(f: () => unknown): string {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(CitytwinError)
    expect((e as CitytwinError).code).toBe('RULES_BAD_FILE')
    return (e as Error).message
  }
  throw new Error('expected the rules to be refused')
}

describe('rule files', () => {
  it('the shipped rules load and are checked as a set', () => {
    const rules = loadRuleDir(SHIPPED_RULES_DIR, catalogue)
    expect(new Set(rules.map((r) => r.kind))).toEqual(new Set(['threshold', 'rate', 'silence', 'area-silence', 'count', 'composite', 'camera']))
  })

  it('names every problem of a file with its path', () => {
    const msg = problems(() => parseRuleFile('bad.yaml', `
rules:
  - { id: A, kind: threshold, title: t, ticketType: waterlogging, deviceTypes: [water_level], metric: level_cm, above: 1 }
  - { id: b, kind: thresold, title: t, ticketType: waterlogging }
  - { id: c, kind: rate, title: t, ticketType: gas_leak, deviceTypes: [gas], metric: ch4_pct_lel, risePerMin: -1 }
  - { id: d, kind: count, title: t, ticketType: bin_overflow, source: device-event, events: [x], count: 3, windowS: 60, hours: [22, 30] }
`))
    expect(msg).toContain('bad.yaml: rules[0].id: lowercase letters, digits, - and _')
    expect(msg).toContain('bad.yaml: rules[1].kind')
    expect(msg).toContain('bad.yaml: rules[2].risePerMin')
    expect(msg).toContain('bad.yaml: rules[3].hours[1]')
  })

  it('refuses contradictions the schema alone lets through', () => {
    const msg = problems(() => parseRuleFile('two.yaml', `
rules:
  - { id: a, kind: threshold, title: t, ticketType: waterlogging, deviceTypes: [water_level], metric: level_cm, above: 30, below: 5 }
  - { id: b, kind: threshold, title: t, ticketType: waterlogging, deviceTypes: [water_level], metric: level_cm, above: 30, clear: 40 }
  - { id: c, kind: threshold, title: t, ticketType: waterlogging, deviceTypes: [water_level, gas], metric: level_cm, above: 30 }
`))
    expect(msg).toContain('two.yaml: rules[0]: give exactly one of above and below')
    expect(msg).toContain('two.yaml: rules[1].clear: must be on the normal side of the threshold')
    expect(msg).toContain('two.yaml: rules[2].metric: gas devices send no metric "level_cm" (they send ch4_pct_lel)')
  })

  it('says when a file is not YAML or JSON at all', () => {
    expect(problems(() => parseRuleFile('x.json', '{ rules: ['))).toMatch(/^x\.json: not valid JSON/)
    expect(problems(() => parseRuleFile('x.yaml', 'rules: [ {'))).toMatch(/^x\.yaml: not valid YAML/)
  })

  it('checks a folder as one set: duplicate ids, unknown ticket types, missing parts, wrong suppressors', () => {
    const dir = join(tempDir(), 'rules')
    mkdirSync(dir)
    writeFileSync(join(dir, 'a.yaml'), `
rules:
  - { id: water, kind: threshold, title: t, ticketType: waterlogging, deviceTypes: [water_level], metric: level_cm, above: 30 }
  - { id: fire, kind: composite, title: t, ticketType: fire, parts: [{ rule: smoke }, { cameraEvent: scene_change }] }
`)
    writeFileSync(join(dir, 'b.json'), JSON.stringify({ rules: [
      { id: 'water', kind: 'threshold', title: 't', ticketType: 'flooding_everywhere', deviceTypes: ['water_level'], metric: 'level_cm', above: 50 },
      { id: 'quiet', kind: 'silence', title: 't', ticketType: 'device_offline', suppressedBy: ['water'] },
    ] }))
    writeFileSync(join(dir, 'notes.txt'), 'not a rule file, not read')
    const msg = problems(() => loadRuleDir(dir, catalogue))
    expect(msg).toContain('rule water: the id is used twice')
    expect(msg).toContain('rule water.ticketType: "flooding_everywhere" is not in the dispatch catalogue')
    expect(msg).toContain('rule fire.parts: no rule "smoke"')
    expect(msg).toContain('rule quiet.suppressedBy: "water" is not an area-silence rule')
  })
})
