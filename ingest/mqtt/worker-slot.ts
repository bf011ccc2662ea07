// A gateway worker's slot: 0 to n-1, handed on to its replacements
// (cluster.ts forks each worker with it in its environment). Its metrics are
// one series per slot (a replaced worker's restart is that series' reset,
// not a drop of the sum), and slot 0 speaks for all of them about the
// kernel's listen queue they share. Read here only.
export const WORKER_SLOT_ENV = 'CITYTWIN_MQTT_WORKER_SLOT'

/** This process's slot; undefined outside a cluster's worker. */
export function workerSlot(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env[WORKER_SLOT_ENV]
  const slot = raw === undefined || raw === '' ? Number.NaN : Number(raw)
  return Number.isInteger(slot) && slot >= 0 ? slot : undefined
}
