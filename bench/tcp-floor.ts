// A floor for the gateway: what one message costs a bare Node TCP server,
// without MQTT, validation, relay or store, at the city's shape (each
// device's socket carries one small message every few seconds, so each
// message is a wake-up, a read and a 4-byte answer). Two ways of reading
// are alternated: 'data' events (a fresh buffer for every read) and Node's
// `onread` with one buffer used again, as the fast lane reads
// (ingest/mqtt/fast-lane.ts, whose way of finding the slots it uses). The client runs in a process of its own at
// nice 15, below the server.
//
// Usage: npm run bench:floor -- [--connections N] [--interval-ms MS] [--rounds R] [--window-s S]
//   defaults: 17,000 connections (a gateway worker's share of the city),
//   one message each every 9,400 ms (the city's rate per device), two
//   rounds of both ways, four 10-s windows each after 20 s to connect.
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, connect, type Socket } from 'node:net'
import { parseArgs } from 'node:util'
import { userReadSlots } from '../ingest/mqtt/fast-lane.ts'

type Mode = 'data' | 'onread'

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'bench' },
    mode: { type: 'string', default: 'data' },
    port: { type: 'string', default: '0' },
    connections: { type: 'string', default: '17000' },
    'interval-ms': { type: 'string', default: '9400' },
    rounds: { type: 'string', default: '2' },
    'window-s': { type: 'string', default: '10' },
    windows: { type: 'string', default: '4' },
  },
})

const ANSWER = Buffer.from([0x40, 2, 0, 1])

/** Reads `s` into `buffer`, as the gateway's fast lane does (its `userReadSlots`). */
function useOneBuffer(s: Socket, buffer: Buffer, onRead: (n: number) => void): void {
  const slots = userReadSlots(s)
  if (!slots) throw new Error('this Node has no onread slots on its sockets')
  const own = s as unknown as Record<symbol, unknown>
  own[slots.buffer] = buffer
  own[slots.callback] = (n: number): boolean => {
    onRead(n)
    return true
  }
  slots.handle.useUserBuffer(buffer)
}

/** The server: answers each read with 4 bytes and prints its CPU a message for each window. */
function server(mode: Mode, windowS: number, windows: number): void {
  const buffer = Buffer.allocUnsafeSlow(65_536)
  let reads = 0
  const srv = createServer((s) => {
    s.on('error', () => undefined)
    if (mode === 'onread') {
      useOneBuffer(s, buffer, () => {
        reads++
        s.write(ANSWER)
      })
    } else {
      s.on('data', () => {
        reads++
        s.write(ANSWER)
      })
    }
  })
  srv.listen(0, '127.0.0.1', () => {
    const address = srv.address()
    process.send?.({ port: typeof address === 'object' && address ? address.port : 0 })
  })
  process.on('message', (m: { start?: boolean }) => {
    if (!m.start) return
    let n = 0
    let cpu = process.cpuUsage()
    let seen = reads
    const timer = setInterval(() => {
      const used = process.cpuUsage(cpu)
      cpu = process.cpuUsage()
      const count = reads - seen
      seen = reads
      process.send?.({ window: { reads: count, userUs: used.user, systemUs: used.system } })
      if (++n === windows) {
        clearInterval(timer)
        process.exit(0)
      }
    }, windowS * 1000)
  })
}

/** The client: `connections` sockets from eight loopback addresses, each sending 120 bytes every `intervalMs`, spread evenly. */
function client(port: number, connections: number, intervalMs: number): void {
  const message = Buffer.alloc(120, 1)
  let open = 0
  for (let i = 0; i < connections; i++) {
    const s = connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (i % 8)}` }, () => {
      if (++open === connections) process.send?.({ connected: true })
      setTimeout(() => setInterval(() => s.write(message), intervalMs), Math.random() * intervalMs)
    })
    s.on('data', () => undefined)
    s.on('error', () => undefined)
  }
}

function child(args: string[], nice = 0): ChildProcess {
  const cmd = nice > 0 ? 'nice' : process.execPath
  const argv = nice > 0 ? ['-n', String(nice), process.execPath, ...process.execArgv, import.meta.filename, ...args] : [...process.execArgv, import.meta.filename, ...args]
  return spawn(cmd, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
}

async function round(mode: Mode, connections: number, intervalMs: number, windowS: number, windows: number): Promise<string[]> {
  const srv = child(['--role', 'server', '--mode', mode, '--window-s', String(windowS), '--windows', String(windows)])
  const port = await new Promise<number>((resolve) => srv.on('message', (m: { port?: number }) => m.port && resolve(m.port)))
  const cli = child(['--role', 'client', '--port', String(port), '--connections', String(connections), '--interval-ms', String(intervalMs)], 15)
  const lines: string[] = []
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the client did not connect ${connections} sockets within 60 s`)), 60_000)
      cli.on('message', (m: { connected?: boolean }) => {
        if (m.connected) {
          clearTimeout(t)
          resolve()
        }
      })
    })
    // A full interval first, so every socket sends at its pace.
    await new Promise((r) => setTimeout(r, intervalMs + 1_000))
    srv.send({ start: true })
    await new Promise<void>((resolve) => {
      srv.on('message', (m: { window?: { reads: number; userUs: number; systemUs: number } }) => {
        const w = m.window
        if (!w || w.reads === 0) return
        lines.push(`${mode.padEnd(6)} ${(w.reads / windowS).toFixed(0).padStart(6)} msg/s  ${((w.userUs + w.systemUs) / w.reads).toFixed(1).padStart(5)} µs a message (user ${(w.userUs / w.reads).toFixed(1)}, system ${(w.systemUs / w.reads).toFixed(1)})`)
      })
      srv.on('exit', () => resolve())
    })
  } finally {
    cli.kill()
    srv.kill()
  }
  return lines
}

if (values.role === 'server') server(values.mode as Mode, Number(values['window-s']), Number(values.windows))
else if (values.role === 'client') client(Number(values.port), Number(values.connections), Number(values['interval-ms']))
else {
  const connections = Number(values.connections)
  const intervalMs = Number(values['interval-ms'])
  console.log(`bench:floor: a bare Node TCP server, ${connections} connections, 120 bytes every ${intervalMs} ms each (${Math.round(connections * 1000 / intervalMs)} msg/s), answered with 4 bytes; the client at nice 15`)
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const mode of ['data', 'onread'] as const) {
      for (const line of await round(mode, connections, intervalMs, Number(values['window-s']), Number(values.windows))) console.log(line)
    }
  }
}
