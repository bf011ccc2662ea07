// Which camera gateway process owns which cameras. Rendezvous (highest
// random weight) hashing: a camera goes to the shard whose hash of
// (shard, camera) is highest. Every gateway decides alone, with no table to
// share, and going from n shards to n + 1 moves only the cameras the new
// shard wins, about 1/(n + 1) of them; none moves between the old shards.
import { createHash } from 'node:crypto'

export interface Shard {
  index: number
  count: number
}

/** Reads "i/n" (shard i of n, counted from 0). */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim())
  const index = Number(m?.[1])
  const count = Number(m?.[2])
  if (!m || count < 1 || index >= count) throw new RangeError(`a shard is i/n with 0 <= i < n, e.g. 0/4; got ${JSON.stringify(text)}`)
  return { index, count }
}

/** The weight of `shard` for `cameraId`: the first 6 bytes of a SHA-1 of both, as a number. */
function weight(shard: number, cameraId: string): number {
  return createHash('sha1').update(`${shard}\u0000${cameraId}`).digest().readUIntBE(0, 6)
}

/** The shard of `count` that owns `cameraId`. */
export function shardOf(cameraId: string, count: number): number {
  let best = 0
  let bestWeight = -1
  for (let s = 0; s < count; s++) {
    const w = weight(s, cameraId)
    if (w > bestWeight) {
      best = s
      bestWeight = w
    }
  }
  return best
}

export function owns(shard: Shard, cameraId: string): boolean {
  return shard.count === 1 || shardOf(cameraId, shard.count) === shard.index
}
