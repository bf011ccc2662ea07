// The optional base map: where a deployment has a tile server, the API's
// configuration names a MapLibre style (api.basemapStyleUrl) and the viewer
// draws it under the grids. MapLibre is loaded only then, from the files the
// build copies beside the viewer; it follows deck.gl's camera and takes no
// input of its own. Without a style nothing is fetched: the city's own
// outlines are the base.
import type { MapViewState } from '@deck.gl/core'
import type * as MapLibre from 'maplibre-gl'

export interface Basemap {
  follow(view: MapViewState): void
}

export async function startBasemap(parent: HTMLElement, styleUrl: string, view: MapViewState): Promise<Basemap> {
  const base = new URL('vendor/maplibre/', document.baseURI)
  const css = document.createElement('link')
  css.rel = 'stylesheet'
  css.href = new URL('maplibre-gl.css', base).href
  document.head.append(css)
  const lib = (await import(/* @vite-ignore */ new URL('maplibre-gl.mjs', base).href)) as typeof MapLibre
  const box = document.createElement('div')
  box.id = 'basemap'
  parent.prepend(box)
  const map = new lib.Map({
    container: box, style: styleUrl, interactive: false, attributionControl: { compact: true },
    center: [view.longitude, view.latitude], zoom: view.zoom, bearing: view.bearing ?? 0, pitch: view.pitch ?? 0,
  })
  map.on('error', (e) => console.warn('base map', e.error))
  return {
    follow(v) {
      // deck.gl's web-mercator zoom is MapLibre's (both 512 px tiles).
      map.jumpTo({ center: [v.longitude, v.latitude], zoom: v.zoom, bearing: v.bearing ?? 0, pitch: v.pitch ?? 0 })
    },
  }
}
