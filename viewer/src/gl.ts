// The WebGL context the map draws into. Where the browser has no GPU
// (software GL, as in headless Chromium or a thin client), a frame costs
// what its pixels cost on the CPU: multisampling (4 samples a pixel) and a
// kept drawing buffer (a copy a frame) roughly doubled the frame time there.
// So in software GL the canvas gets neither: fills are unchanged, points keep
// the edge smoothing of their own shader, only lines lose theirs. With a GPU
// both stay at the browser's defaults.
import { isSoftwareRenderer } from './data/renderer.ts'

/** Context attributes for this browser (deck.gl's `deviceProps.webgl`). */
export function contextAttributes(): WebGLContextAttributes {
  const gl = document.createElement('canvas').getContext('webgl2')
  if (!gl) return {} // deck.gl reports the missing WebGL 2 itself
  // Chromium does not count SwiftShader as a major performance caveat, so the renderer is asked by name.
  const info = gl.getExtension('WEBGL_debug_renderer_info')
  const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER))
  gl.getExtension('WEBGL_lose_context')?.loseContext()
  return isSoftwareRenderer(renderer) ? { antialias: false, preserveDrawingBuffer: false } : {}
}
