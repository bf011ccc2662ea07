// A few lines instead of a UI framework: elements from a tag, attributes and children.
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v)
  e.append(...children)
  return e
}

export function clear(e: HTMLElement): void {
  while (e.firstChild) e.removeChild(e.firstChild)
}

/** A small line chart as SVG (the history of a metric). */
export function sparkline(values: readonly { t: number; v: number }[], width = 280, height = 70): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg'
  const svg = document.createElementNS(ns, 'svg')
  svg.setAttribute('width', String(width))
  svg.setAttribute('height', String(height))
  svg.setAttribute('class', 'spark')
  if (values.length < 2) return svg
  const t0 = values[0]?.t ?? 0
  const t1 = values[values.length - 1]?.t ?? 1
  const lo = Math.min(...values.map((p) => p.v))
  const hi = Math.max(...values.map((p) => p.v))
  const x = (t: number): number => ((t - t0) / Math.max(1, t1 - t0)) * (width - 4) + 2
  const y = (v: number): number => height - 2 - ((v - lo) / Math.max(1e-9, hi - lo)) * (height - 4)
  const path = document.createElementNS(ns, 'path')
  path.setAttribute('d', values.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' '))
  svg.append(path)
  return svg
}
