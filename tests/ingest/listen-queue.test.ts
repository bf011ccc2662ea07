import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { kernelListenCap, listenQueueAdvice } from '../../ingest/mqtt/listen-queue.ts'
import { tempDir } from '../helpers.ts'

describe('listen queue advice', () => {
  it('speaks only when the kernel grants less than asked and the devices could not all wait in line', () => {
    expect(listenQueueAdvice(219_300, 65_535, 4_096)).toMatch(/at most 4096 .*219300 devices.*sysctl -w net.core.somaxconn=65535/)
    // Enough for every device, granted in full, or unknown: nothing to say.
    expect(listenQueueAdvice(2_000, 65_535, 4_096)).toBeUndefined()
    expect(listenQueueAdvice(219_300, 65_535, 65_535)).toBeUndefined()
    expect(listenQueueAdvice(219_300, 1_024, 4_096)).toBeUndefined()
    expect(listenQueueAdvice(219_300, 65_535, undefined)).toBeUndefined()
  })

  it('reads somaxconn, and gives nothing for a file it cannot read', () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'somaxconn'), '4096\n')
    expect(kernelListenCap(join(dir, 'somaxconn'))).toBe(4_096)
    expect(kernelListenCap(join(dir, 'missing'))).toBeUndefined()
    // This machine's own (Linux): a positive number.
    expect(kernelListenCap()).toBeGreaterThan(0)
  })
})
