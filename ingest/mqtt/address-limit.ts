// Connections per client address, per gateway process. One address that
// opens thousands of connections (a script, a compromised gateway box, a
// device in a reconnect loop that never closes its old sockets) would take
// the files and the CONNECT capacity of everyone. Devices behind a
// carrier's NAT share an address, so the limit is generous and can be
// turned off (mqtt.maxConnectionsPerAddress, 0).
export class AddressLimit {
  /** Connections open by address, with the address as first read: one string an address, not one a connection. */
  readonly #open = new Map<string, { address: string; n: number }>()
  constructor(readonly max: number) {}

  /** Whether one more connection from `address` may be taken; if so, it is counted until `release`. */
  take(address: string): boolean {
    if (this.max <= 0) return true
    const open = this.#open.get(address)
    if (!open) {
      this.#open.set(address, { address, n: 1 })
      return true
    }
    if (open.n >= this.max) return false
    open.n++
    return true
  }

  /**
   * The string this limit keeps for `address` while a connection of it is
   * open, for a caller that keeps the address as long as the connection:
   * the city's 219,300 connections come from a few addresses, and a string
   * each was some 30 bytes a connection. `address` itself where none is kept.
   */
  shared(address: string): string {
    return this.#open.get(address)?.address ?? address
  }

  release(address: string): void {
    if (this.max <= 0) return
    const open = this.#open.get(address)
    if (!open) return
    if (--open.n <= 0) this.#open.delete(address)
  }

  /** Addresses with a connection open. */
  get addresses(): number {
    return this.#open.size
  }
}

/**
 * The remote address of a plain TCP socket, read from its handle. Node's
 * `socket.remoteAddress` keeps what it reads on the socket for the
 * socket's life (`_peername`: an object and a string, about 90 bytes a
 * connection) for an address the gateway reads once. Undefined where the
 * stream has no such handle (a WebSocket stream) or the read fails: the
 * caller falls back to `remoteAddress`.
 */
export function peerAddress(stream: object): string | undefined {
  const handle = (stream as { _handle?: { getpeername?: unknown } | null })._handle
  if (!handle || typeof handle.getpeername !== 'function') return undefined
  const out: { address?: unknown } = {}
  const failed = (handle.getpeername as (out: object) => number).call(handle, out)
  return failed === 0 && typeof out.address === 'string' ? out.address : undefined
}
