// The kernel's queue of connections not yet accepted. A listener asks for
// mqtt.listenBacklog, and Linux gives it at most net.core.somaxconn (4,096
// on this project's machine). In a reconnect storm of the whole city, at
// the city's rate, the 13 workers each get a thirteenth of two busy cores
// and accept late: the queue overflowed 247,652 times in one storm
// (2026-12-01), and each dropped SYN costs its device a retransmission 1,
// 3, 7, 15 s later. With somaxconn at 65,535 the same storm dropped none
// and was back 17 s sooner. Raising it is the operator's (a sysctl); the
// gateway says so at start when its devices could not all wait in line.
import { readFileSync } from 'node:fs'

/** net.core.somaxconn, or undefined where it cannot be read (not Linux, no /proc). */
export function kernelListenCap(path = '/proc/sys/net/core/somaxconn'): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim())
    return Number.isInteger(n) && n > 0 ? n : undefined
  } catch {
    return undefined
  }
}

/**
 * What to tell the operator, or undefined when nothing: the queue the
 * kernel grants (the smaller of the asked backlog and somaxconn) against
 * the devices that would come back at once in a storm.
 */
export function listenQueueAdvice(devices: number, backlog: number, cap: number | undefined): string | undefined {
  if (cap === undefined || cap >= backlog || devices <= cap) return undefined
  return `the kernel queues at most ${cap} connections for the MQTT listener (net.core.somaxconn), less than mqtt.listenBacklog (${backlog}), and ${devices} devices may come back at once after an outage: ` +
    `raise it, e.g. sysctl -w net.core.somaxconn=${Math.min(65_535, backlog)} (and in /etc/sysctl.d to keep it), or devices wait seconds for SYN retransmissions in a reconnect storm`
}
