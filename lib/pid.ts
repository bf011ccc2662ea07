// Whether a process runs, by its id: for files and sockets named after the
// process that made them (the store's owner file, bundles), which outlive a
// process killed before it could remove them.

/** Whether a process of that id runs (one we may not signal runs too; a pid taken again by another process counts as running). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}
