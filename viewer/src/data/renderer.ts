// Software GL told from a GPU by the renderer's name (see ../gl.ts for why it matters).

/** Renderer names of software GL: Chromium's SwiftShader, Mesa's llvmpipe and softpipe. */
const SOFTWARE_GL = /swiftshader|llvmpipe|softpipe|software/i

export function isSoftwareRenderer(renderer: string): boolean {
  return SOFTWARE_GL.test(renderer)
}
