import { describe, expect, it } from 'vitest'
import { RefusalDigest } from '../../ingest/mqtt/refusal-digest.ts'

describe('refusal digest', () => {
  it('sums refusals by reason, largest first, and starts a fresh window at each take', () => {
    const d = new RefusalDigest()
    expect(d.take()).toBeUndefined()
    d.count('GATEWAY_FULL')
    d.count('CONNECT_TIMEOUT')
    d.count('CONNECT_TIMEOUT')
    const first = d.take()
    expect(first).toEqual({ CONNECT_TIMEOUT: 2, GATEWAY_FULL: 1 })
    expect(Object.keys(first ?? {})).toEqual(['CONNECT_TIMEOUT', 'GATEWAY_FULL'])
    expect(d.take()).toBeUndefined()
    d.count('ADDRESS_LIMIT')
    expect(d.take()).toEqual({ ADDRESS_LIMIT: 1 })
  })
})
