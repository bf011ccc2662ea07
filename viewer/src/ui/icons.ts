// The ticket markers' icon atlas, drawn once on a canvas at start-up: the
// viewer works offline, so no image is fetched. One 64 px cell per
// severity: a red disc with "!" (critical), an amber triangle (warning),
// a blue disc with "i" (info).
export const ICON_SIZE = 64

export interface IconMapping {
  [name: string]: { x: number; y: number; width: number; height: number; anchorY: number; mask: boolean }
}

export function ticketIconAtlas(): { atlas: string; mapping: IconMapping } {
  const s = ICON_SIZE
  const canvas = document.createElement('canvas')
  canvas.width = 3 * s
  canvas.height = s
  const g = canvas.getContext('2d')
  if (!g) throw new Error('no 2D canvas: cannot draw the ticket icons')
  const glyph = (x: number, text: string, colour: string, y = s / 2 + 2): void => {
    g.fillStyle = colour
    g.font = `bold ${Math.round(s * 0.55)}px sans-serif`
    g.textAlign = 'center'
    g.textBaseline = 'middle'
    g.fillText(text, x + s / 2, y)
  }
  const disc = (x: number, fill: string): void => {
    g.beginPath()
    g.arc(x + s / 2, s / 2, s / 2 - 3, 0, 2 * Math.PI)
    g.fillStyle = fill
    g.fill()
    g.lineWidth = 4
    g.strokeStyle = '#ffffff'
    g.stroke()
  }
  disc(0, '#d63031')
  glyph(0, '!', '#ffffff')
  g.beginPath()
  g.moveTo(s + s / 2, 4)
  g.lineTo(2 * s - 4, s - 6)
  g.lineTo(s + 4, s - 6)
  g.closePath()
  g.fillStyle = '#e17055'
  g.fill()
  g.lineWidth = 4
  g.strokeStyle = '#ffffff'
  g.stroke()
  glyph(s, '!', '#ffffff', s / 2 + 6)
  disc(2 * s, '#0984e3')
  glyph(2 * s, 'i', '#ffffff')
  const cell = (i: number) => ({ x: i * s, y: 0, width: s, height: s, anchorY: s / 2, mask: false })
  return { atlas: canvas.toDataURL('image/png'), mapping: { critical: cell(0), warning: cell(1), info: cell(2) } }
}
