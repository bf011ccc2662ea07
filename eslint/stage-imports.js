// The folders are stages, each above the ones it may use, so that a reading
// can be followed upwards (device -> ingest -> store -> twin -> rules) and
// no stage reaches into one above it. This rule fails the lint on an
// import that goes up, or across into the simulators or the viewer.
//
//   lib          shared helpers: errors, logs, metrics, config, the bus, HTTP routing, the command contract
//   store        the element tables: client, writers, migrations, the embedded store's owner
//   registry     the city model: grids, devices, cameras, device types, and the city's tables
//   ingest       gateways: a device's message becomes rows
//   twin/state   the live twin: rows become the city's state
//   twin/api     the twin's HTTP API and live feed
//   rules        rules, tickets, dispatch, modes, linkage, complaints
//   simulators   synthetic cities, device fleets, scenarios (load and accuracy tests)
//   app          the composition root: the `citytwin` command, `start`, the command table
//
// A stage may import its own files and those of any stage listed above it
// in this table. Only the composition root may import the simulators (it
// offers them as commands and runs the demo city). The viewer is its own
// program (a browser bundle) and imports nothing of the server's. bench/
// and tests/ stand outside the stages and may import any of them.
import { dirname, join, normalize, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

export const STAGES = ['lib', 'store', 'registry', 'ingest', 'twin/state', 'twin/api', 'rules', 'simulators', 'app']

/** The stage of a repository-relative path, or undefined for files outside the stages (bench, tests, tooling). */
export function stageOf(path) {
  const p = path.split(sep).join('/')
  if (p.startsWith('viewer/')) return 'viewer'
  for (const s of STAGES) if (p === s || p.startsWith(`${s}/`)) return s
  return undefined
}

/** Why `from` may not import `to` (repository-relative paths), or undefined when it may. */
export function refusal(from, to) {
  const a = stageOf(from)
  const b = stageOf(to)
  if (a === undefined || b === undefined || a === b) return undefined
  if (a === 'viewer' || b === 'viewer') return `the viewer is a browser bundle of its own: ${a} may not import ${b}`
  if (b === 'simulators' && a !== 'app') return `only the composition root (app/) may import the simulators; ${a} may not`
  if (STAGES.indexOf(b) > STAGES.indexOf(a)) return `${a} may not import ${b}, a stage above it (stages, lowest first: ${STAGES.join(', ')})`
  return undefined
}

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), '..'))

export default {
  rules: {
    'stage-imports': {
      meta: { type: 'problem', docs: { description: 'no import from a stage above (see eslint/stage-imports.js)' }, schema: [] },
      create(context) {
        const file = relative(ROOT, context.filename)
        const check = (node, source) => {
          if (!source || typeof source.value !== 'string' || !source.value.startsWith('.')) return
          const target = relative(ROOT, normalize(join(dirname(context.filename), source.value)))
          const why = refusal(file, target)
          if (why) context.report({ node, message: `Upward import of ${source.value}: ${why}.` })
        }
        return {
          ImportDeclaration: (node) => check(node, node.source),
          ExportAllDeclaration: (node) => check(node, node.source),
          ExportNamedDeclaration: (node) => check(node, node.source),
          ImportExpression: (node) => check(node, node.source),
        }
      },
    },
  },
}
