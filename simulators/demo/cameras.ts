// The demo city's cameras, alive: `citytwin start` with the demo city runs
// the camera simulator on loopback and points the camera gateway at it, so
// the viewer shows live camera states and the camera rules raise tickets
// with nothing else set up. A few cameras are set apart, always the same
// ones (by their number), so the demo has something to show: black, frozen,
// offline and degraded (5 of its 25 frames a second). Needs ffmpeg to render
// the clips; without it the demo runs without cameras and says why.
import type { Component, ComponentStats, Health } from '../../lib/component.ts'
import { loadClips } from '../cameras/clips.ts'
import { CameraSimulator, type SimCamera } from '../cameras/server.ts'

/** The demo's cameras set apart, by the number in their id: every 97th black, 89th offline, 83rd degraded, 101st frozen. */
export function demoCamera(id: string): SimCamera | undefined {
  const m = /^C(\d{6})$/.exec(id)
  if (!m) return undefined
  const n = Number(m[1])
  if (n % 97 === 0) return { clip: 'black' }
  if (n % 89 === 0) return { clip: 'street', fault: 'offline' }
  if (n % 83 === 0) return { clip: 'street', fps: 5 }
  if (n % 101 === 0) return { clip: 'frozen' }
  return { clip: 'street' }
}

export class DemoCameras implements Component {
  readonly name = 'demo-cameras'
  #sim: CameraSimulator | undefined

  /** Where the simulator listens, once started: the camera gateway's stream host. */
  get hostPort(): string {
    return `127.0.0.1:${this.#sim?.port ?? 0}`
  }

  async start(): Promise<void> {
    const clips = await loadClips(['street', 'black', 'frozen'])
    this.#sim = new CameraSimulator({ host: '127.0.0.1', port: 0, clips, camera: demoCamera })
    await this.#sim.start()
  }

  async stop(deadline: number): Promise<void> {
    await this.#sim?.stop(deadline)
  }

  stats(): ComponentStats {
    return this.#sim?.stats() ?? {}
  }

  async health(): Promise<Health> {
    const s = this.#sim?.stats()
    return { ok: s !== undefined, detail: s ? `camera simulator on ${this.hostPort}: ${Number(s.playing)} streams playing` : 'not started' }
  }
}
