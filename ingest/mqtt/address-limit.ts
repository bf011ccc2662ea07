// Connections per client address, per gateway process. One address that
// opens thousands of connections (a script, a compromised gateway box, a
// device in a reconnect loop that never closes its old sockets) would take
// the files and the CONNECT capacity of everyone. Devices behind a
// carrier's NAT share an address, so the limit is generous and can be
// turned off (mqtt.maxConnectionsPerAddress, 0).
export class AddressLimit {
  readonly #open = new Map<string, number>()
  constructor(readonly max: number) {}

  /** Whether one more connection from `address` may be taken; if so, it is counted until `release`. */
  take(address: string): boolean {
    if (this.max <= 0) return true
    const n = this.#open.get(address) ?? 0
    if (n >= this.max) return false
    this.#open.set(address, n + 1)
    return true
  }

  release(address: string): void {
    if (this.max <= 0) return
    const n = (this.#open.get(address) ?? 0) - 1
    if (n <= 0) this.#open.delete(address)
    else this.#open.set(address, n)
  }

  /** Addresses with a connection open. */
  get addresses(): number {
    return this.#open.size
  }
}
