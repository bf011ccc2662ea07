// What the benchmarks read about their processes from /proc: a process's
// children (the gateway workers), memory, and CPU time. Linux only, as the
// benchmarks are.
import { readdirSync, readFileSync } from 'node:fs'
import type { ChildProcess } from 'node:child_process'
import { loadConfig } from '../lib/config.ts'
import { mqttConfig } from '../ingest/mqtt/config.ts'

/** The fields of /proc/pid/stat after the command name (which may hold spaces, so split after its ')'). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined // the process ended meanwhile
  }
}

/** Pids whose parent is `parent`. */
export function childPids(parent: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    // After the name: state, ppid, ...
    if (Number(statFields(Number(name))?.[1]) === parent) out.push(Number(name))
  }
  return out
}

/** The gateway workers among a primary's children: those running `gateway mqtt` (tsx's esbuild service is a child too). */
export function gatewayWorkerPids(primary: number): number[] {
  return childPids(primary).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('gateway\0mqtt')
    } catch {
      return false // ended meanwhile
    }
  })
}

/** `pid` and everything below it. */
export function processTree(pid: number): number[] {
  const out = [pid]
  for (let i = 0; i < out.length; i++) for (const c of childPids(out[i] ?? 0)) out.push(c)
  return out
}

/** CPU seconds (user + system) a process has used so far; 0 once it has ended. */
export function cpuSeconds(pid: number): number {
  const f = statFields(pid)
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name, in clock ticks (100 a second on Linux).
  return f ? (Number(f[11]) + Number(f[12])) / 100 : 0
}

/**
 * CPU time a process's threads have had, and the time they waited runnable
 * for a CPU (the run queue), in ms, from /proc/pid/task/tid/schedstat; zeros
 * once it has ended.
 */
export function schedOf(pid: number): { cpuMs: number; waitMs: number } {
  let cpuNs = 0
  let waitNs = 0
  let tids: string[]
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch (e) {
    if (gone(e)) return { cpuMs: 0, waitMs: 0 } // the process ended meanwhile
    throw e
  }
  for (const tid of tids) {
    let text: string
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8')
    } catch (e) {
      if (gone(e)) continue // the thread ended between the listing and the read: its time is gone with it
      throw new Error(`cannot read /proc/${pid}/task/${tid}/schedstat (a kernel without CONFIG_SCHED_INFO has none): ${String(e)}`, { cause: e })
    }
    const [cpu, wait] = text.split(' ')
    cpuNs += Number(cpu)
    waitNs += Number(wait)
  }
  return { cpuMs: cpuNs / 1e6, waitMs: waitNs / 1e6 }
}

/** The error of reading /proc for a process or thread that has ended. */
const gone = (e: unknown): boolean => ['ENOENT', 'ESRCH'].includes((e as NodeJS.ErrnoException).code ?? '')

/**
 * CPU time of a changing set of processes, in ms, never going back: a
 * process that has ended (a gateway worker replaced mid-run) keeps the
 * time it was last seen with, where a plain sum over the living would lose it.
 */
export class CpuLedger {
  readonly #last = new Map<number, number>()

  /** The total so far, after reading the processes `pids` now. */
  sample(pids: readonly number[]): number {
    for (const pid of pids) {
      const ms = schedOf(pid).cpuMs
      // A pid ended between the listing and the read reads 0: keep what it had.
      if (ms > 0 || !this.#last.has(pid)) this.#last.set(pid, Math.max(ms, this.#last.get(pid) ?? 0))
    }
    let total = 0
    for (const ms of this.#last.values()) total += ms
    return total
  }
}

/** schedOf summed over processes. */
export function schedOfAll(pids: readonly number[]): { cpuMs: number; waitMs: number } {
  const sum = { cpuMs: 0, waitMs: 0 }
  for (const p of pids) {
    const s = schedOf(p)
    sum.cpuMs += s.cpuMs
    sum.waitMs += s.waitMs
  }
  return sum
}

const kib = (text: string, field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024

/** Resident and proportional set size of a process in bytes; 0 once it has ended. */
export function memoryOf(pid: number): { rss: number; pss: number } {
  try {
    return { rss: kib(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS'), pss: kib(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss') }
  } catch {
    return { rss: 0, pss: 0 }
  }
}

/**
 * Resolves with the first match of `re` in what `child` prints. After that,
 * what it prints goes on to `rest` (a log file, say), so the child never
 * blocks on a full pipe and the bench holds none of it in memory.
 */
export function waitForLine(child: ChildProcess, re: RegExp, rest?: NodeJS.WritableStream): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = ''
    const onData = (d: Buffer): void => {
      text += d.toString()
      const m = re.exec(text)
      if (!m) return
      child.stdout?.off('data', onData)
      child.off('exit', onExit)
      if (rest) {
        rest.write(text.slice(m.index + m[0].length)) // what came after the match in the same chunk
        child.stdout?.pipe(rest)
      } else {
        child.stdout?.resume()
      }
      resolve(m)
    }
    const onExit = (code: number | null): void => reject(new Error(`process exited (${code}) before printing ${re}: ${text}`))
    child.stdout?.on('data', onData)
    child.once('exit', onExit)
  })
}

/**
 * Connections the kernel dropped, since boot, because a listener's accept
 * queue was full (TcpExt ListenOverflows in /proc/net/netstat; 0 where it
 * cannot be read). Each costs the device a SYN retransmitted after 1, 2,
 * 4... s: a connect phase or a reconnect storm slowed by it is the queue's
 * doing, not the CPU's.
 */
export function listenOverflows(): number {
  return tcpExtCounter('ListenOverflows')
}

/**
 * A TcpExt counter of /proc/net/netstat since boot (0 where it cannot be
 * read). SyncookiesFailed: ACKs that answered a SYN cookie the kernel could
 * no longer take (sent when the listener's SYN queue was full); the kernel
 * answers the device's next segment with a reset, which it sees as
 * ECONNRESET before its CONNACK, with no refusal on the gateway's side.
 */
export function tcpExtCounter(name: string): number {
  try {
    // Two TcpExt lines: the counters' names, then their values.
    const [names = [], values = []] = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:')).map((l) => l.split(/\s+/))
    const i = names.indexOf(name)
    return i > 0 ? Number(values[i] ?? 0) : 0
  } catch {
    return 0
  }
}

/** The kernel's cap on a listener's accept queue (net.core.somaxconn); undefined where it cannot be read. */
export function somaxconn(): number | undefined {
  try {
    return Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim())
  } catch {
    return undefined
  }
}

/**
 * The nice a benchmark's own process takes once the system runs: the
 * gateway workers' (mqtt.workerNice, as the system reads it from this
 * environment), so it outranks no part of the system yet keeps its clock
 * (at the simulator's nice its reports slipped by seconds when the machine
 * was saturated).
 */
export function harnessNice(): number {
  return loadConfig(mqttConfig).workerNice
}
