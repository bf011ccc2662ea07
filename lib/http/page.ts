// One page of a list the API holds in memory: the items from `cursor` (an
// offset, as the previous page's `next` gave it), at most `limit` of them.
// Shared by the twin's and the rules' routes.
export function page<T>(items: readonly T[], limit: number, cursor: string | undefined): { items: T[]; total: number; next: string | null } {
  const from = cursor === undefined ? 0 : Number(cursor)
  return paged({ items: items.slice(from, from + limit), total: items.length }, from, limit)
}

/** A page already taken from `from` (by one that need not list the whole list, e.g. a grid's members), with its next cursor. */
export function paged<T>(taken: { items: T[]; total: number }, from: number, limit: number): { items: T[]; total: number; next: string | null } {
  return { ...taken, next: from + limit < taken.total ? String(from + limit) : null }
}
