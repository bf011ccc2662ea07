// Software GL told from a GPU by the renderer's name (see ../gl.ts for why it matters).

/** Renderer names of software GL: Chromium's SwiftShader, Mesa's llvmpipe and softpipe, Windows' WARP. */
const SOFTWARE_GL = /swiftshader|llvmpipe|softpipe|microsoft basic render|software/i

export function isSoftwareRenderer(renderer: string): boolean {
  return SOFTWARE_GL.test(renderer)
}
