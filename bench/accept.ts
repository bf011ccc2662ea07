// What accepting a connection costs a pool of worker processes that share
// one listening socket, as the gateway's workers do (node:cluster,
// SCHED_NONE), by how many of them listen at once. Node 20 puts the shared
// socket in every listening worker's epoll without EPOLLEXCLUSIVE and has
// no SO_REUSEPORT, so each new connection wakes every worker that listens,
// and all but one find nothing to accept.
//
// 13 listening cost the workers two to three times what one does a
// connection (2026-12-02). That was put down to the herd, but it is the
// spread: with `--reuse-port` (Node 22.12 on) each listening worker has a
// socket of its own and the kernel wakes only the one it gives the
// connection to, and 13 cost as much (251 and 272 µs a connection against
// 271 shared, on Node 22.23 in the same hour, 2026-12-03): a worker woken
// for one connection pays for the wake, where one worker taking them all
// takes several a wake. So a newer Node's SO_REUSEPORT would not make the
// gateway's connections cheaper. With only the two least loaded accepting,
// the whole city's reconnect storm took 250 s instead of 122 to 162,
// because on two saturated cores a few processes at nice 10 get a few
// shares of the CPU, drain the kernel's listen queue too slowly, and it
// drops SYNs (658,436 in that storm) that devices retry seconds later
// (docs/benchmarks.md); the gateway keeps every worker below its share
// listening.
//
// `--listening 0`: the primary alone accepts (one epoll, nice 0) and passes
// each socket, unread, to the workers in turn over node's IPC, as
// cluster's round robin and the gateway's hand-over do. On dev (2026-12-03)
// that cost far more: 380 to 410 µs a connection in the workers and 70 to
// 75 in the primary, against 243 to 272 with all 13 listening: node's IPC
// takes a message, a handle wrapped and an acknowledgement back for every
// socket, and keeps one handle in flight at a time.
//
// Each worker answers a connection's first byte and holds it, like a
// gateway answering a CONNECT; the client opens the connections at a fixed
// rate from a process of its own at nice 15, below the workers, then closes
// them all. The figure is the workers' CPU (user and system, /proc) over
// the whole round divided by the connections, with the client's beside it.
//
// Usage: npm run bench:accept -- [--workers W] [--listening 0,1,2,13] [--connections N] [--rate R] [--rounds K] [--reuse-port]
//   defaults: 13 workers (the city's), 1, 2 and 13 of them listening (0: the primary accepts and passes),
//   10,000 connections at 2,000 a second, two rounds of each, alternated.
//   --reuse-port needs Node 22.12 or later: run this file with such a node (`node --import tsx bench/accept.ts --reuse-port`).
import cluster from 'node:cluster'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'bench' },
    port: { type: 'string', default: '0' },
    workers: { type: 'string', default: '13' },
    listening: { type: 'string', default: '1,2,13' },
    connections: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '2' },
    'reuse-port': { type: 'boolean', default: false },
  },
})

/** Whether this Node can give each listener a socket of its own with SO_REUSEPORT (`reusePort`, 22.12 and 23.1 on). */
function hasReusePort(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)
}

/** CPU a process has used, user and system, in ms (/proc/PID/stat, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/** A worker: listens when told, answers each connection's first byte and holds it. */
function worker(): void {
  let server: Server | undefined
  const held: Socket[] = []
  /** Answers the connection's first byte and holds it until it closes. */
  const hold = (s: Socket): void => {
    s.setNoDelay(true)
    s.once('data', () => s.write('k'))
    s.on('error', () => undefined)
    s.on('close', () => held.splice(held.indexOf(s), 1))
    held.push(s)
  }
  process.on('message', (m: { listen?: boolean; handed?: boolean }, handle?: unknown) => {
    if (m.handed && handle) {
      // Passed by the primary, unread (it accepted with pauseOnConnect).
      hold(handle as Socket)
      ;(handle as Socket).resume()
      return
    }
    if (m.listen && !server) {
      server = createServer(hold)
      const ready = (): void => void process.send?.({ listening: true })
      // --reuse-port: a socket of this worker's own, the kernel spreading connections over them; no herd.
      if (values['reuse-port']) server.listen({ port: Number(values.port), host: '127.0.0.1', backlog: 4096, exclusive: true, reusePort: true }, ready)
      else server.listen(Number(values.port), '127.0.0.1', 4096, ready)
    }
  })
  // A message sent before the listener above is set would be lost: the primary waits for this.
  process.send?.({ ready: true })
}

/** The client: opens `connections` at `rate` a second over a few loopback addresses, waits for each answer, then closes all. */
async function client(): Promise<void> {
  const port = Number(values.port)
  const total = Number(values.connections)
  const perTick = Number(values.rate) / 100
  const sockets: Socket[] = []
  let answered = 0
  let errors = 0
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      for (let k = 0; k < perTick && sockets.length < total; k++) {
        const s = connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (sockets.length % 16)}` }, () => s.write('c'))
        s.once('data', () => {
          if (++answered === total) {
            clearInterval(timer)
            done()
          }
        })
        s.on('error', () => {
          errors++
          if (answered + errors >= total) {
            clearInterval(timer)
            done()
          }
        })
        sockets.push(s)
      }
    }, 10)
  })
  for (const s of sockets) s.destroy()
  const cpu = process.cpuUsage()
  process.stdout.write(JSON.stringify({ answered, errors, cpuMs: Math.round((cpu.user + cpu.system) / 1000) }) + '\n')
}

/** One round: `listening` of the pool listen, the client connects and closes; the workers' and the client's CPU. */
async function round(pool: ReturnType<typeof cluster.fork>[], listening: number, port: number): Promise<string> {
  // listening 0: the primary accepts and passes each socket, unread, to the workers in turn.
  let primaryServer: Server | undefined
  if (listening === 0) {
    let next = 0
    primaryServer = createServer({ pauseOnConnect: true }, (s) => {
      const w = pool[next++ % pool.length]
      w?.send({ handed: true }, s)
    })
    await new Promise<void>((r) => primaryServer?.listen(port, '127.0.0.1', 4096, r))
  }
  const primaryBefore = cpuMs(process.pid)
  await Promise.all(pool.slice(0, listening).map((w) => new Promise<void>((resolve) => {
    const on = (m: { listening?: boolean }): void => {
      if (!m.listening) return
      w.off('message', on)
      resolve()
    }
    w.on('message', on)
    w.send({ listen: true })
  })))
  const before = pool.map((w) => cpuMs(w.process.pid ?? 0))
  const started = performance.now()
  const c = spawn('nice', ['-n', '15', process.execPath, ...process.execArgv, import.meta.filename, '--role', 'client', '--port', String(port), '--connections', String(values.connections), '--rate', String(values.rate)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  c.stdout.on('data', (d: Buffer) => (out += d.toString()))
  await new Promise((r) => c.on('exit', r))
  // The workers see the closes: give them a moment to finish with them.
  await new Promise((r) => setTimeout(r, 500))
  const primaryMs = listening === 0 ? cpuMs(process.pid) - primaryBefore : 0
  await new Promise((r) => (primaryServer ? primaryServer.close(r) : r(null)))
  const used = pool.reduce((a, w, i) => a + cpuMs(w.process.pid ?? 0) - (before[i] ?? 0), primaryMs)
  const n = Number(values.connections)
  const r = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { answered?: number; errors?: number; cpuMs?: number }
  const clientMs = r.cpuMs ?? 0
  const who = listening === 0 ? `primary accepting, passing to ${pool.length} (primary ${primaryMs} ms)` : `${String(listening).padStart(2)} of ${pool.length} listening`
  return `  ${who}: ${r.answered ?? 0} answered, ${r.errors ?? 0} errors in ${((performance.now() - started) / 1000).toFixed(1)} s; workers ${used} ms of CPU, ${Math.round((used * 1000) / n)} µs a connection; client (nice 15) ${clientMs} ms, ${Math.round((clientMs * 1000) / n)} µs a connection`
}

async function main(): Promise<void> {
  if (values['reuse-port'] && !hasReusePort()) throw new Error(`--reuse-port needs Node 22.12 or later (net's reusePort); this is ${process.version}`)
  const n = Number(values.workers)
  const counts = String(values.listening).split(',').map(Number).filter((k) => k >= 0 && k <= n)
  const rounds = Number(values.rounds)
  // A free port for all rounds: each round forks its own pool, so no worker that listened before is left holding the socket.
  const probe = createServer()
  const port = await new Promise<number>((r) => probe.listen(0, '127.0.0.1', () => r((probe.address() as { port: number }).port)))
  await new Promise((r) => probe.close(r))
  const how = values['reuse-port'] ? 'each listening one with a socket of its own (SO_REUSEPORT)' : 'sharing one listening socket (node:cluster, SCHED_NONE)'
  console.log(`bench:accept: ${n} worker processes ${how}, ${values.connections} connections at ${values.rate}/s each round, answered and held, then closed; the client at nice 15`)
  cluster.schedulingPolicy = cluster.SCHED_NONE
  cluster.setupPrimary({ exec: import.meta.filename, args: ['--role', 'worker', '--port', String(port)], execArgv: process.execArgv })
  for (let r = 0; r < rounds; r++) {
    for (const k of r % 2 === 0 ? counts : [...counts].reverse()) {
      const pool = Array.from({ length: n }, () => cluster.fork())
      await Promise.all(pool.map((w) => new Promise<void>((res) => {
        const on = (m: { ready?: boolean }): void => {
          if (!m.ready) return
          w.off('message', on)
          res()
        }
        w.on('message', on)
      })))
      console.log(await round(pool, k, port))
      for (const w of pool) w.kill()
      await Promise.all(pool.map((w) => new Promise((res) => (w.isDead() ? res(null) : w.once('exit', res)))))
    }
  }
}

if (values.role === 'worker') worker()
else if (values.role === 'client') await client()
else await main()
