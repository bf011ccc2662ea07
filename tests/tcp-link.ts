// A TCP proxy whose behaviour a test controls: pass traffic through, drop
// every new connection, hold new connections unanswered until released, or
// lose the answer (the request reaches the server, the connection is cut as
// the answer comes back).
// Tests put it between a client and a real server to make real network
// failures and stalls.
import { createServer, connect, type Server, type Socket } from 'node:net'

export class Link {
  mode: 'pass' | 'drop' | 'hold' | 'lose-answer' = 'pass'
  accepted = 0
  /** Answers lost in mode 'lose-answer'. */
  lost = 0
  #held: Socket[] = []
  #server: Server
  constructor(private readonly target: URL) {
    this.#server = createServer((socket) => {
      this.accepted++
      if (this.mode === 'drop') return socket.destroy()
      if (this.mode === 'hold') {
        socket.pause()
        this.#held.push(socket)
        return
      }
      if (this.mode === 'lose-answer') return this.#loseAnswer(socket)
      this.#pipe(socket)
    })
  }
  #loseAnswer(socket: Socket): void {
    const up = connect(Number(this.target.port), this.target.hostname)
    socket.pipe(up)
    up.once('data', () => {
      this.lost++
      socket.destroy()
      up.destroy()
    })
    up.on('error', () => socket.destroy())
    socket.on('error', () => up.destroy())
  }
  #pipe(socket: Socket): void {
    const up = connect(Number(this.target.port), this.target.hostname)
    socket.pipe(up).pipe(socket)
    socket.resume()
    up.on('error', () => socket.destroy())
    socket.on('error', () => up.destroy())
  }
  release(): void {
    this.mode = 'pass'
    for (const s of this.#held.splice(0)) this.#pipe(s)
  }
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r))
    const addr = this.#server.address()
    if (addr === null || typeof addr === 'string') throw new Error('no address')
    return `http://127.0.0.1:${addr.port}`
  }
  close(): void {
    for (const s of this.#held.splice(0)) s.destroy()
    this.#server.close()
  }
}

