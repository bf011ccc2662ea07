// Device ids to registry rows, in flat arrays instead of a Map.
//
// Why: every gateway worker holds the whole registry (any device may land
// on any worker through the shared listen socket), and a Map of 219,300
// ids costs about 58 bytes an id, 12 MB of heap in each of the city's 13
// workers: 219,300 string objects and a hash table that every major
// collection marks again. Here the ids are bytes in one buffer, and the
// table is an Int32Array: about 25 bytes an id, none of it objects the
// collector walks. Looked up once per CONNECT, not per message.
//
// Open addressing with linear probing over a power-of-two table kept at
// most half full. A removed id leaves a tombstone, so that ids placed
// after it in a probe sequence are still found; rows are never reused, as
// the registry's columns are indexed by row.

/** A table slot: 0 empty, TOMBSTONE removed, else the row + 1. */
const EMPTY = 0
const TOMBSTONE = -1
/** Longest id, in UTF-8 bytes (the registry allows 64 ASCII characters; this is only the array's bound). */
export const MAX_ID_BYTES = 65_535

/** FNV-1a over the UTF-16 code units: the same for the string at lookup and at insert, with no encoding. */
function hashOf(id: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193)
  return h >>> 0
}

export class IdIndex {
  /** The ids' UTF-8 bytes, one after another, in row order. */
  #bytes = Buffer.allocUnsafe(16 * 1024)
  #used = 0
  #start = new Uint32Array(1024)
  #length = new Uint16Array(1024)
  #hash = new Uint32Array(1024)
  #slots = new Int32Array(2048)
  #rows = 0
  #size = 0
  /** Slots taken by rows or tombstones: what decides when the table grows. */
  #filled = 0

  /** Ids present. */
  get size(): number {
    return this.#size
  }

  /** Rows handed out so far, removed ids' included: the next new id gets this one. */
  get rows(): number {
    return this.#rows
  }

  /** The row of `id`, or -1. */
  find(id: string): number {
    const slot = this.#slotOf(id, hashOf(id))
    return slot < 0 ? -1 : (this.#slots[slot] as number) - 1
  }

  /** The row of `id`: its own if present, else a new one. */
  add(id: string): number {
    const hash = hashOf(id)
    const found = this.#slotOf(id, hash)
    if (found >= 0) return (this.#slots[found] as number) - 1
    const bytes = Buffer.byteLength(id, 'utf8')
    if (bytes > MAX_ID_BYTES) throw new RangeError(`device id of ${bytes} bytes: at most ${MAX_ID_BYTES}`)
    if ((this.#filled + 1) * 2 > this.#slots.length) this.#rehash()
    const row = this.#rows++
    if (row >= this.#start.length) this.#growRows()
    while (this.#used + bytes > this.#bytes.length) this.#growBytes()
    this.#bytes.write(id, this.#used, 'utf8')
    this.#start[row] = this.#used
    this.#length[row] = bytes
    this.#hash[row] = hash
    this.#used += bytes
    this.#place(row, hash)
    this.#size++
    return row
  }

  /** Takes `id` out; its row is not reused. False when it was not there. */
  remove(id: string): boolean {
    const slot = this.#slotOf(id, hashOf(id))
    if (slot < 0) return false
    this.#slots[slot] = TOMBSTONE
    this.#size--
    return true
  }

  /** The id of a row (present or removed). */
  idOf(row: number): string {
    const start = this.#start[row] as number
    return this.#bytes.toString('utf8', start, start + (this.#length[row] as number))
  }

  /** The rows of the ids present, in the order they were first added. */
  *liveRows(): IterableIterator<number> {
    for (let row = 0; row < this.#rows; row++) if (this.find(this.idOf(row)) === row) yield row
  }

  /** The slot holding `id`, or -1. */
  #slotOf(id: string, hash: number): number {
    const mask = this.#slots.length - 1
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const v = this.#slots[slot] as number
      if (v === EMPTY) return -1
      if (v !== TOMBSTONE && this.#hash[v - 1] === hash && this.#equals(v - 1, id)) return slot
    }
  }

  #equals(row: number, id: string): boolean {
    const start = this.#start[row] as number
    const length = this.#length[row] as number
    // Ids are ASCII in practice (registry/import.ts ID_PATTERN): compared byte by byte, no string made.
    if (length !== id.length) return length >= id.length && this.idOf(row) === id
    for (let i = 0; i < length; i++) {
      const c = id.charCodeAt(i)
      if (c >= 0x80) return this.idOf(row) === id
      if (this.#bytes[start + i] !== c) return false
    }
    return true
  }

  #place(row: number, hash: number): void {
    const mask = this.#slots.length - 1
    let slot = hash & mask
    while (this.#slots[slot] !== EMPTY) slot = (slot + 1) & mask
    this.#slots[slot] = row + 1
    this.#filled++
  }

  /** The table, half full: twice as large, or as large when tombstones filled it (a quarter or more of it), without them. */
  #rehash(): void {
    const old = this.#slots
    this.#slots = new Int32Array(this.#size * 4 >= old.length ? old.length * 2 : old.length)
    this.#filled = 0
    for (const v of old) if (v > 0) this.#place(v - 1, this.#hash[v - 1] as number)
  }

  #growRows(): void {
    const n = this.#start.length * 2
    const grow = <T extends Uint16Array | Uint32Array>(a: T, b: T): T => {
      b.set(a)
      return b
    }
    this.#start = grow(this.#start, new Uint32Array(n))
    this.#length = grow(this.#length, new Uint16Array(n))
    this.#hash = grow(this.#hash, new Uint32Array(n))
  }

  #growBytes(): void {
    const b = Buffer.allocUnsafe(this.#bytes.length * 2)
    this.#bytes.copy(b, 0, 0, this.#used)
    this.#bytes = b
  }
}
