// The gateway's flat id index answers as a Map of ids to rows would, through
// growth, removals (tombstones), ids added again and ids that are not ASCII.
import { describe, expect, it } from 'vitest'
import { IdIndex, MAX_ID_BYTES } from '../../ingest/mqtt/id-index.ts'

/** A small deterministic generator (mulberry32), so a failure can be run again. */
function random(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

describe('id index', () => {
  it('gives each id its row, past its initial sizes, and finds nothing else', () => {
    const index = new IdIndex()
    const ids = Array.from({ length: 50_000 }, (_, i) => `D${String(i).padStart(7, '0')}`)
    ids.forEach((id, i) => expect(index.add(id)).toBe(i))
    expect([index.size, index.rows]).toEqual([50_000, 50_000])
    ids.forEach((id, i) => expect(index.find(id)).toBe(i))
    expect(index.add('D0000042')).toBe(42)
    expect(index.size).toBe(50_000)
    for (const absent of ['D9999999', 'D000004', 'D00000420', '', 'd0000042']) expect(index.find(absent)).toBe(-1)
    expect(index.idOf(49_999)).toBe('D0049999')
  })

  it('keeps a removed id out, finds the ids probed past it, and gives an id added again a new row', () => {
    const index = new IdIndex()
    for (let i = 0; i < 2_000; i++) index.add(`cam:${i}`)
    for (let i = 0; i < 2_000; i += 2) expect(index.remove(`cam:${i}`)).toBe(true)
    expect(index.remove('cam:0')).toBe(false)
    expect(index.size).toBe(1_000)
    for (let i = 0; i < 2_000; i++) expect(index.find(`cam:${i}`)).toBe(i % 2 === 0 ? -1 : i)
    expect(index.add('cam:0')).toBe(2_000)
    expect(index.find('cam:0')).toBe(2_000)
    expect([...index.liveRows()].slice(0, 3)).toEqual([1, 3, 5])
    expect([...index.liveRows()].at(-1)).toBe(2_000)
  })

  it('agrees with a Map over a long random run of adds and removes', () => {
    const next = random(7)
    const index = new IdIndex()
    const model = new Map<string, number>()
    let rows = 0
    for (let step = 0; step < 100_000; step++) {
      const id = `d-${Math.floor(next() * 5_000)}`
      if (next() < 0.35) {
        expect(index.remove(id), `step ${step}: remove ${id}`).toBe(model.delete(id))
      } else {
        const row = model.get(id) ?? rows++
        model.set(id, row)
        expect(index.add(id), `step ${step}: add ${id}`).toBe(row)
      }
    }
    expect(index.size).toBe(model.size)
    for (const [id, row] of model) expect(index.find(id)).toBe(row)
    expect([...index.liveRows()].map((r) => index.idOf(r))).toEqual([...model.entries()].sort((a, b) => a[1] - b[1]).map(([id]) => id))
  })

  it('holds ids that are not ASCII, and refuses one too long for its arrays', () => {
    const index = new IdIndex()
    const ids = ['传感器-1', 'caméra-7', 'x😀y', 'plain']
    ids.forEach((id, i) => expect(index.add(id)).toBe(i))
    ids.forEach((id, i) => expect([index.find(id), index.idOf(i)]).toEqual([i, id]))
    expect(index.find('传感器-2')).toBe(-1)
    expect(() => index.add('a'.repeat(MAX_ID_BYTES + 1))).toThrow(/at most 65535/)
    expect(index.size).toBe(4)
  })
})
