// A small seeded PRNG (sfc32, from PractRand's test suite) so a seed always
// builds the same city on every machine and Node version.

export interface Rng {
  /** Uniform in [0, 1). */
  readonly next: () => number
  /** Integer in [0, n). */
  readonly int: (n: number) => number
  /** Uniform in [lo, hi). */
  readonly range: (lo: number, hi: number) => number
  /** Standard normal (Box-Muller). */
  readonly normal: () => number
  readonly pick: <T>(items: readonly T[]) => T
}

export function createRng(seed: number): Rng {
  let a = 0x9e3779b9 ^ seed
  let b = 0x243f6a88 ^ Math.imul(seed, 0x85ebca6b)
  let c = 0xb7e15162 ^ Math.imul(seed, 0xc2b2ae35)
  let d = 1
  const next = (): number => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0
    let t = (a + b) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    d = (d + 1) | 0
    t = (t + d) | 0
    c = (c + t) | 0
    return (t >>> 0) / 4294967296
  }
  for (let i = 0; i < 15; i++) next() // mix the seed in
  const rng: Rng = {
    next,
    int: (n) => Math.floor(next() * n),
    range: (lo, hi) => lo + next() * (hi - lo),
    normal: () => {
      const u = Math.max(next(), 1e-12)
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next())
    },
    pick: (items) => {
      const item = items[Math.floor(next() * items.length)]
      if (item === undefined) throw new RangeError('pick from an empty list')
      return item
    },
  }
  return rng
}

/**
 * Splits `total` into integer parts proportional to `weights`, each at least
 * `min`, summing exactly to `total` (largest-remainder method).
 */
export function allocate(total: number, weights: readonly number[], min = 1): number[] {
  const n = weights.length
  if (n === 0) return []
  if (total < min * n) throw new RangeError(`cannot give ${n} parts at least ${min} each out of ${total}`)
  const free = total - min * n
  const sum = weights.reduce((s, w) => s + w, 0)
  const exact = weights.map((w) => (sum > 0 ? (free * w) / sum : free / n))
  const parts = exact.map((x) => Math.floor(x))
  let left = free - parts.reduce((s, p) => s + p, 0)
  const order = exact.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((p, q) => q.r - p.r || p.i - q.i)
  for (let k = 0; left > 0; k = (k + 1) % n, left--) {
    const o = order[k]
    if (o) parts[o.i] = (parts[o.i] ?? 0) + 1
  }
  return parts.map((p) => p + min)
}
