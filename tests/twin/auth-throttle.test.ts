// The count of unknown bearer tokens per address (twin/api/auth-throttle.ts), on its own.
import { describe, expect, it } from 'vitest'
import { AuthThrottle } from '../../twin/api/auth-throttle.ts'

describe('AuthThrottle', () => {
  it('blocks an address after its failures in a window, until the window ends, and no other address', () => {
    const t = new AuthThrottle(3, 60_000)
    for (let i = 0; i < 2; i++) t.failed('10.0.0.1', 1_000 + i)
    expect(t.blockedFor('10.0.0.1', 2_000)).toBe(0)
    t.failed('10.0.0.1', 2_000)
    expect(t.blockedFor('10.0.0.1', 2_000)).toBe(59_000)
    expect(t.blockedFor('10.0.0.2', 2_000)).toBe(0)
    expect(t.blockedFor('10.0.0.1', 61_000)).toBe(0)
    // A new window starts from nothing.
    t.failed('10.0.0.1', 61_000)
    expect(t.blockedFor('10.0.0.1', 61_001)).toBe(0)
  })

  it('forgets the address counted longest ago past its bound', () => {
    const t = new AuthThrottle(1, 60_000, 2)
    t.failed('a', 0)
    t.failed('b', 1)
    t.failed('c', 2)
    expect(t.addresses).toBe(2)
    expect(t.blockedFor('a', 3)).toBe(0)
    expect(t.blockedFor('b', 3)).toBeGreaterThan(0)
    expect(t.blockedFor('c', 3)).toBeGreaterThan(0)
  })
})
