// One page of a list the API holds in memory: the items from `cursor` (an
// offset, as the previous page's `next` gave it), at most `limit` of them.
// Shared by the twin's and the rules' routes.
export function page<T>(items: readonly T[], limit: number, cursor: string | undefined): { items: T[]; total: number; next: string | null } {
  const from = cursor === undefined ? 0 : Number(cursor)
  const slice = items.slice(from, from + limit)
  return { items: slice, total: items.length, next: from + limit < items.length ? String(from + limit) : null }
}
