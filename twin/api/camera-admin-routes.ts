// Cameras managed while the system runs, through the API: what `citytwin
// cameras add|update|move|decommission` do from the command line. Each
// change goes to the registry (registry/provision.ts) and its camera log,
// which the twin follows within twin.registryRefreshMs; each is kept in the
// audit trail like any other (server.ts).
import { z } from 'zod'
import { CAMERA_KINDS } from '../../registry/city.ts'
import { PROFILE_LIMITS } from '../../registry/import.ts'
import type { CameraChange, CameraProvisionResult, Provisioner } from '../../registry/provision.ts'
import { HttpError, route, type Reply, type Route } from '../../lib/http/router.ts'
import { location, locationOf, placed, PLACED, reason } from './device-admin-routes.ts'

const whole = (max: number) => z.number().int().min(1).max(max)
const profile = z.strictObject({
  codec: z.enum(['h264', 'h265']).optional(),
  width: whole(PROFILE_LIMITS.width).optional(), height: whole(PROFILE_LIMITS.height).optional(), fps: whole(PROFILE_LIMITS.fps).optional(),
  bitrateKbps: whole(PROFILE_LIMITS.bitrateKbps).optional(), gop: whole(PROFILE_LIMITS.gop).optional(),
}).describe('Its stream profile; what is left out stays as it was (h264, 1920x1080, 25 fps, 4096 kbps, GOP 50 for a new camera).')
const rtspUrl = z.string().min(1).max(2_048).describe('Where its stream is pulled from: rtsp:// or rtsps:// with a host.')

export function cameraAdminRoutes(provisioner: Provisioner): Route[] {
  const change = async (c: CameraChange, actor: string | undefined, why: string, created = false): Promise<Reply> => {
    const r: CameraProvisionResult = await provisioner.applyCamera(c, actor ?? 'anonymous', why)
    if (!r.ok) throw new HttpError(r.status, r.code, r.message)
    return { status: created ? 201 : 200, body: { op: r.op, camera: r.camera, at: r.at } }
  }
  return [
    route({
      method: 'POST', path: '/api/admin/cameras', tag: 'admin', role: 'admin',
      summary: 'Adds a camera to the registry: the twin shows it in its grids within twin.registryRefreshMs',
      body: z.strictObject({
        id: z.string().min(1).max(64).describe('Its id: letters, digits, ., _, : or -.'),
        kind: z.enum(CAMERA_KINDS), rtspUrl, profile: profile.optional(), ...location, reason,
      }).refine(placed, PLACED),
      handler: async ({ body, caller }) => change({ op: 'add', id: body.id, kind: body.kind, rtspUrl: body.rtspUrl, profile: body.profile, at: locationOf(body) }, caller?.name, body.reason, true),
    }),
    route({
      method: 'POST', path: '/api/admin/cameras/{id}/update', tag: 'admin', role: 'admin',
      summary: 'Changes a camera\'s kind, stream URL or stream profile',
      body: z.strictObject({ kind: z.enum(CAMERA_KINDS).optional(), rtspUrl: rtspUrl.optional(), profile: profile.optional(), reason }),
      handler: async ({ params, body, caller }) => change({ op: 'update', id: params.id ?? '', kind: body.kind, rtspUrl: body.rtspUrl, profile: body.profile }, caller?.name, body.reason),
    }),
    route({
      method: 'POST', path: '/api/admin/cameras/{id}/move', tag: 'admin', role: 'admin',
      summary: 'Moves a camera: from then on it counts in the grids of its new place',
      body: z.strictObject({ ...location, reason }).refine(placed, PLACED),
      handler: async ({ params, body, caller }) => change({ op: 'move', id: params.id ?? '', at: locationOf(body) }, caller?.name, body.reason),
    }),
    route({
      method: 'POST', path: '/api/admin/cameras/{id}/decommission', tag: 'admin', role: 'admin',
      summary: 'Takes a camera out of the registry: it leaves the map; its stored events stay',
      body: z.strictObject({ reason }),
      handler: async ({ params, body, caller }) => change({ op: 'decommission', id: params.id ?? '' }, caller?.name, body.reason),
    }),
  ]
}
