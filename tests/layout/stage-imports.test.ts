// The stages' order holds in the lint CI runs: an import from a stage above
// fails it, with a message that names both stages (eslint/stage-imports.js).
import { join, resolve } from 'node:path'
import { ESLint } from 'eslint'
import tseslint from 'typescript-eslint'
import { describe, expect, it } from 'vitest'
import stages, { refusal, stageOf } from '../../eslint/stage-imports.js'

const ROOT = resolve(import.meta.dirname, '../..')

/** ESLint with the stage rule alone (no type information, so a fixture need not exist on disk). */
function linter(): ESLint {
  return new ESLint({
    cwd: ROOT,
    overrideConfigFile: true,
    overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser }, plugins: { citytwin: stages }, rules: { 'citytwin/stage-imports': 'error' } }],
  })
}

async function messages(file: string, code: string): Promise<string[]> {
  const [result] = await linter().lintText(code, { filePath: join(ROOT, file) })
  return (result?.messages ?? []).map((m) => m.message)
}

describe('stage imports', () => {
  it('fails an import from a stage above, naming both', async () => {
    const found = await messages('store/fixture.ts', "import { Twin } from '../twin/state/twin.ts'\nexport const t = Twin\n")
    expect(found).toEqual([expect.stringContaining('store may not import twin/state, a stage above it')])
  })

  it('fails re-exports and dynamic imports from above too', async () => {
    const found = await messages('lib/fixture.ts', "export * from '../rules/engine.ts'\nexport { x } from '../ingest/mqtt/gateway.ts'\nexport const m = () => import('../app/main.ts')\n")
    expect(found).toHaveLength(3)
    expect(found.every((m) => m.includes('lib may not import'))).toBe(true)
  })

  it('passes imports of its own stage, of stages below, and of packages', async () => {
    const code = "import { z } from 'zod'\nimport { a } from './a.ts'\nimport { b } from '../../store/writer.ts'\nimport { c } from '../../lib/errors.ts'\nimport { d } from '../state/twin.ts'\nexport const all = [z, a, b, c, d]\n"
    expect(await messages('twin/api/fixture.ts', code)).toEqual([])
  })

  it('lets only the composition root import the simulators', async () => {
    expect(await messages('app/fixture.ts', "import { g } from '../simulators/city/generate.ts'\nexport const x = g\n")).toEqual([])
    expect(await messages('rules/fixture.ts', "import { g } from '../simulators/city/generate.ts'\nexport const x = g\n")).toEqual([
      expect.stringContaining('only the composition root (app/) may import the simulators'),
    ])
  })

  it('fails a type import, a require and an absolute path from above too', async () => {
    const code = "export type M = typeof import('../app/main.ts')\nexport const r = require('../rules/engine.ts') as unknown\nexport * from '" + join(ROOT, 'app/main.ts') + "'\n"
    const found = await messages('ingest/fixture.ts', code)
    expect(found).toHaveLength(3)
    expect(found.every((m) => m.includes('ingest may not import'))).toBe(true)
  })

  it('fails a source file in a folder that has no stage, and a stage that imports the tests', async () => {
    expect(await messages('video/fixture.ts', 'export const x = 1\n')).toEqual([expect.stringContaining('video/fixture.ts is in no stage')])
    expect(await messages('twin/fixture.ts', 'export const x = 1\n')).toEqual([expect.stringContaining('is in no stage')])
    expect(await messages('lib/fixture.ts', "import { tempDir } from '../tests/helpers.ts'\nexport const t = tempDir\n")).toEqual([
      expect.stringContaining('tests, benchmarks and tooling stand outside the stages'),
    ])
  })

  it('keeps the viewer apart, and leaves bench and tests free', () => {
    expect(refusal('viewer/src/main.ts', 'registry/city.ts')).toContain('browser bundle')
    expect(refusal('ingest/mqtt/gateway.ts', 'viewer/src/main.ts')).toContain('browser bundle')
    expect(refusal('bench/ingest.ts', 'app/main.ts')).toBeUndefined()
    expect(refusal('tests/x.test.ts', 'simulators/city/generate.ts')).toBeUndefined()
    expect(stageOf('twin/state/twin.ts')).toBe('twin/state')
    expect(stageOf('registry/city-store.ts')).toBe('registry')
  })

  it('is on in the project lint config for every stage', async () => {
    const eslint = new ESLint({ cwd: ROOT })
    for (const file of ['lib/errors.ts', 'store/writer.ts', 'registry/import.ts', 'ingest/mqtt/gateway.ts', 'twin/state/twin.ts', 'twin/api/server.ts', 'rules/engine.ts', 'simulators/demo/demo.ts', 'app/main.ts', 'tests/helpers.ts']) {
      const config = (await eslint.calculateConfigForFile(join(ROOT, file))) as { rules?: Record<string, unknown> }
      expect(config.rules?.['citytwin/stage-imports'], file).toEqual([2])
    }
  })
})
