// The WebGL context the map draws into.
//
// It never keeps its drawing buffer: luma.gl asks for one by default, which
// costs a copy of the canvas every frame, and nothing here reads the canvas
// back (picking draws into its own framebuffer).
//
// Where the browser has no GPU (software GL, as in headless Chromium or a
// thin client), a frame costs what its samples cost on the CPU, so the
// canvas also gets no multisampling (4 samples a pixel). Polygon interiors
// are unchanged; polygon and line edges lose their smoothing, points keep
// their shader's own. A trace of bench:viewer showed the renderer waiting
// on SwiftShader for all but 2-3 ms of a frame; without the two, the frame
// medians about halved. With a GPU, multisampling stays on.
import { isSoftwareRenderer } from './data/renderer.ts'

/** Context attributes for this browser (deck.gl's `deviceProps.webgl`). */
export function contextAttributes(): WebGLContextAttributes {
  const keepNoBuffer = { preserveDrawingBuffer: false }
  const gl = document.createElement('canvas').getContext('webgl2')
  if (!gl) return keepNoBuffer // deck.gl reports the missing WebGL 2 itself
  // Chromium does not count SwiftShader as a major performance caveat, so
  // the renderer is asked by name. Without the extension (Firefox's
  // resistFingerprinting) RENDERER names it there; Chromium and Safari say
  // only "WebKit WebGL" and keep multisampling.
  const info = gl.getExtension('WEBGL_debug_renderer_info')
  const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER))
  gl.getExtension('WEBGL_lose_context')?.loseContext()
  return isSoftwareRenderer(renderer) ? { ...keepNoBuffer, antialias: false } : keepNoBuffer
}
