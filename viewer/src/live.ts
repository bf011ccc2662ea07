// The live feed (/api/live) from the browser: subscribes to what the map
// shows, hands each delta to the map, and reconnects with backoff.
import { token } from './api.ts'

export interface Hello {
  grid: string[]
  device: string[]
  camera: string[]
}

export interface Delta {
  t: number
  grids?: number[][]
  devices?: [string, number, number, number][]
  cameras?: [string, number][]
}

type Subscription = { level: string } | { bbox: [number, number, number, number] } | { grids: number[] }

export class LiveClient {
  #ws: WebSocket | undefined
  #subs: Subscription[] = []
  #attempt = 0
  #closed = false
  hello: Hello | undefined
  /** What the feed has brought so far (the benchmark reads it to show the live load on the page). */
  readonly received = { deltas: 0, grids: 0, devices: 0, cameras: 0 }
  onDelta: (d: Delta) => void = () => undefined
  onState: (connected: boolean) => void = () => undefined

  connect(): void {
    // A browser cannot set headers on a WebSocket: the token goes as access_token (needed where reads are not open).
    const tk = token()
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/live${tk ? `?access_token=${encodeURIComponent(tk)}` : ''}`
    const ws = new WebSocket(url)
    this.#ws = ws
    ws.onopen = () => {
      this.#attempt = 0
      this.onState(true)
      for (const s of this.#subs) ws.send(JSON.stringify({ subscribe: s }))
    }
    ws.onmessage = (ev: MessageEvent<string>) => {
      const m = JSON.parse(ev.data) as ({ type: 'hello' } & Hello) | ({ type: 'delta' } & Delta) | { type: 'error'; message: string }
      if (m.type === 'hello') this.hello = m
      else if (m.type === 'delta') {
        const r = this.received
        r.deltas++
        r.grids += m.grids?.length ?? 0
        r.devices += m.devices?.length ?? 0
        r.cameras += m.cameras?.length ?? 0
        this.onDelta(m)
      }
      else console.warn('live feed:', m.message)
    }
    ws.onclose = () => {
      this.onState(false)
      if (this.#closed) return
      const delay = Math.min(30_000, 500 * 2 ** this.#attempt++) * (0.5 + Math.random() / 2)
      setTimeout(() => this.connect(), delay)
    }
  }

  /** Replaces every subscription with these. */
  subscribe(subs: Subscription[]): void {
    this.#subs = subs
    const ws = this.#ws
    if (ws?.readyState !== WebSocket.OPEN) return
    ws.send(JSON.stringify({ unsubscribe: true }))
    for (const s of subs) ws.send(JSON.stringify({ subscribe: s }))
  }

  close(): void {
    this.#closed = true
    this.#ws?.close()
  }
}
