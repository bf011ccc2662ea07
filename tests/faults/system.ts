// `citytwin start` as the fault suite runs it: its own process (so it can be
// killed), gateway workers, a fixed MQTT port (so devices find it again
// after a restart) and a device secret the test knows.
import { readdirSync, readlinkSync } from 'node:fs'
import { createServer } from 'node:net'
import { metricSum } from '../../bench/metrics.ts'
import { processTree } from '../../bench/proc.ts'
import { runCli, spawnCli, type RunningCli } from '../helpers.ts'
import type { FaultDeviceSpec } from './devices.ts'

export const SECRET = 'fault-suite-device-secret'

/** The long profile (CITYTWIN_FAULTS_LONG=1): the store away for 60 s instead of 15, longer loads. */
export const LONG = process.env.CITYTWIN_FAULTS_LONG === '1'

export interface FaultSystem {
  run: RunningCli
  api: string
}

/** A port free now, for a system that must come back on the same one. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))))
    })
  })
}

export async function startSystem(dataDir: string, mqttPort: number, env: Record<string, string> = {}, workers = 2): Promise<FaultSystem> {
  const run = await spawnCli(['start', '--no-demo', '--workers', String(workers), '--port', '0', '--mqtt-port', String(mqttPort), '--data-dir', dataDir], /API\s+(http:\/\/\S+)\/api\/city/,
    { CITYTWIN_DEVICE_SECRET: SECRET, CITYTWIN_API_OPEN_READS: 'true', ...env })
  return { run, api: run.match[1] ?? '' }
}

/** Stops it gracefully and waits for it; throws if it does not end cleanly. */
export async function stopSystem(s: FaultSystem): Promise<void> {
  s.run.child.kill('SIGTERM')
  const code = await s.run.exited
  if (code !== 0) throw new Error(`citytwin start ended with ${code}:\n${s.run.stdout()}`)
}

/** Devices of a one-metric type, from the running system's store. */
export async function devicesOf(dataDir: string, type: 'gas' | 'noise', limit: number): Promise<FaultDeviceSpec[]> {
  const r = await runCli(['devices', 'list', '--type', type, '--limit', String(limit), '--json', '--data-dir', dataDir])
  if (r.code !== 0) throw new Error(`devices list failed: ${r.stderr}`)
  // Their typical value: readings that raise nothing unless a case means them to.
  const [metric, value] = type === 'gas' ? ['ch4_pct_lel', 0.5] as const : ['noise_dba', 55] as const
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; topic: string }).map((d) => ({ id: d.id, topic: d.topic, metric, value }))
}

/** Whether any process of `pids` still runs. */
export function anyAlive(pids: readonly number[]): boolean {
  return pids.some((pid) => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  })
}

export { processTree }

/** Open sockets of a process (TCP connections, its listen socket and IPC channel among them). */
export function socketsOf(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')
      } catch {
        return false
      }
    }).length
  } catch {
    return 0
  }
}


/** PUBLISHes the running gateway (all its workers) took for a message stored already: a DUP it does not store again. */
export async function duplicatesJudged(api: string): Promise<number> {
  return metricSum(await (await fetch(`${api}/metrics`)).text(), 'citytwin_ingest_messages_total', 'outcome="duplicate"') ?? 0
}
