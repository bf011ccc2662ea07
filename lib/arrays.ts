// `target.push(...items)` passes every item as an argument, on the stack:
// with a few hundred thousand items (one per device and metric at full
// city) it throws "Maximum call stack size exceeded". The twin's reload
// after a bus gap failed so at full city (bench:rules, 2026-11-30), again
// and again. Append in a loop wherever the count is not small and fixed.

/** Appends `items` to `target` one by one; returns `target`. */
export function pushAll<T>(target: T[], items: readonly T[]): T[] {
  for (let i = 0; i < items.length; i++) target.push(items[i] as T)
  return target
}
