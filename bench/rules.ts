// npm run bench:rules: scenario accuracy at city load. Starts `citytwin
// start` on a fresh full-scale city, then `citytwin sim scenario` (the
// shipped city-incidents scenario by default) with a slice of the city's
// devices at their normal intervals, and prints per incident and overall:
// precision, recall, time from incident to ticket after the rule's own
// duration (p50/p99), and tickets per incident. Figures go to bench/results.
//
//   npm run bench:rules [-- --devices N] [--workers W] [--warmup-s S] [--scenario FILE] [--seed S]
//   (the full city: --devices 219300 --workers 13 --warmup-s 400, as its devices take minutes to connect)
import { spawn } from 'node:child_process'
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { formatReport } from '../simulators/scenarios/cli.ts'
import type { ScenarioReport } from '../simulators/scenarios/evaluate.ts'
import { metricSum } from './metrics.ts'
import { cpuSeconds, gatewayWorkerPids, memoryOf, processTree, waitForLine } from './proc.ts'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '20000' },
    workers: { type: 'string', default: '2' },
    scenario: { type: 'string' },
    seed: { type: 'string', default: '1' },
    'warmup-s': { type: 'string', default: '30' },
  },
})

const dir = mkdtempSync(join(tmpdir(), 'citytwin-bench-rules-'))
const cli = join(REPO, 'bin', 'citytwin.js')
// Reads open, as the bench reads the API without a token (outside the demo city they need one by default).
const env = { ...process.env, CITYTWIN_LOG_LEVEL: 'warn', CITYTWIN_DATA_DIR: join(dir, 'db'), CITYTWIN_API_OPEN_READS: 'true' }
const at = new Date().toISOString()
console.log(`bench:rules: citytwin start --full --workers ${values.workers}; citytwin sim scenario --limit ${values.devices}`)
const system = spawn(process.execPath, [cli, 'start', '--full', '--workers', values.workers, '--port', '0', '--mqtt-port', '0'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'inherit'] })
// What the system prints after it is up goes to a log beside the results, for after the run.
const systemLog = join(REPO, 'bench', 'results', `rules-${at.replace(/[:.]/g, '-')}.log`)
mkdirSync(dirname(systemLog), { recursive: true })
let progress: NodeJS.Timeout | undefined
try {
  const ready = await waitForLine(system, /MQTT\s+port (\d+)[\s\S]*API\s+(http:\/\/\S+)\/api\/city/, createWriteStream(systemLog))
  console.log(`the system's log: ${systemLog}`)
  const out = join(dir, 'report.json')
  const args = [cli, 'sim', 'scenario', '--limit', values.devices, '--mqtt-port', ready[1] ?? '', '--api', ready[2] ?? '', '--seed', values.seed, '--warmup-s', values['warmup-s'], '--out', out,
    ...(values.scenario ? ['--file', values.scenario] : [])]
  const sim = spawn(process.execPath, args, { cwd: REPO, env, stdio: ['ignore', 'inherit', 'inherit'] })
  progress = watchProgress(system.pid ?? 0, sim.pid ?? 0, ready[2] ?? '')
  const code = await new Promise<number | null>((r) => sim.once('exit', (c) => r(c)))
  if (code !== 0) throw new Error(`citytwin sim scenario exited with ${String(code)}`)
  const result = JSON.parse(readFileSync(out, 'utf8')) as { scenario: string; report: ScenarioReport; simulator: Record<string, number> }
  const health = (await (await fetch(`${ready[2] ?? ''}/healthz`)).json())
  // Whether ingest was degraded (then the twin judged no silence), and how often.
  const ingest = (await (await fetch(`${ready[2] ?? ''}/api/ingest`)).json()) as { degraded: boolean; spells: number; lagMs: number }
  const saved = {
    bench: 'rules', at, command: `npm run bench:rules -- --devices ${values.devices} --workers ${values.workers} --warmup-s ${values['warmup-s']}`,
    machine: { cpu: cpus()[0]?.model ?? '', cpus: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    ...result, health, ingest,
  }
  mkdirSync(join(REPO, 'bench', 'results'), { recursive: true })
  const file = join(REPO, 'bench', 'results', `rules-${at.replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(saved, null, 2))
  console.log(formatReport(result.scenario, result.report))
  console.log(`simulator: ${JSON.stringify(result.simulator)}`)
  console.log(`ingest at the end: ${ingest.degraded ? 'degraded' : 'healthy'}, ${ingest.spells} degraded spell(s), lag ${ingest.lagMs} ms`)
  console.log(`results: ${file}`)
} finally {
  clearInterval(progress)
  await new Promise<void>((r) => {
    system.once('exit', () => r())
    system.kill('SIGTERM')
    setTimeout(() => system.kill('SIGKILL'), 30_000).unref()
  })
  rmSync(dir, { recursive: true, force: true })
}

/**
 * Every 30 s, one line: where the CPU went (the primary, its gateway
 * workers, the simulator), memory, and what the store took in. At full city
 * load it shows which part falls behind, as the figures at the end cannot.
 */
function watchProgress(primary: number, sim: number, api: string): NodeJS.Timeout {
  const cpuOf = (pids: number[]): number => pids.reduce((s, p) => s + cpuSeconds(p), 0)
  const t0 = performance.now()
  let last = { at: t0, primary: cpuSeconds(primary), workers: cpuOf(gatewayWorkerPids(primary)), sim: cpuOf(processTree(sim)), rows: 0 }
  const timer = setInterval(() => {
    void (async () => {
      const metrics = await fetch(`${api}/metrics`).then((r) => r.text(), () => '')
      // A progress line: a series not there yet (no ticket, say) counts as 0.
      const sum = (name: string, label?: string): number => metricSum(metrics, name, ...(label ? [label] : [])) ?? 0
      const workers = gatewayWorkerPids(primary)
      const now = { at: performance.now(), primary: cpuSeconds(primary), workers: cpuOf(workers), sim: cpuOf(processTree(sim)), rows: sum('citytwin_store_rows_total', 'table="readings"') }
      const s = (now.at - last.at) / 1000
      // A worker replaced between samples takes its CPU time with it: never below 0.
      const pct = (a: number, b: number): string => `${Math.max(0, Math.round((100 * (a - b)) / s))}%`
      const gb = (n: number): string => (n / 2 ** 30).toFixed(2)
      console.log(`[${Math.round((now.at - t0) / 1000)} s] cpu: primary ${pct(now.primary, last.primary)}, ${workers.length} workers ${pct(now.workers, last.workers)}, simulator ${pct(now.sim, last.sim)}; ` +
        `rss: primary ${gb(memoryOf(primary).rss)} GiB, workers ${gb(workers.reduce((t, p) => t + memoryOf(p).rss, 0))} GiB; ` +
        `readings stored ${Math.round((now.rows - last.rows) / s)}/s, queued ${sum('citytwin_store_queue_rows')}, twin elements ${sum('citytwin_twin_elements_total')}, open tickets ${sum('citytwin_tickets_open')}, ingest ${sum('citytwin_ingest_degraded') === 1 ? 'DEGRADED' : 'healthy'}`)
      last = now
    })()
  }, 30_000)
  timer.unref()
  return timer
}
