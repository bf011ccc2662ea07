// Raw MQTT 3.1.1 packets for the device fleet simulator. A full city is
// 219,300 clients; mqtt.js costs too much memory and CPU per client at that
// scale, so the simulator writes pre-encoded packets and reads only the few
// kinds it expects back. Clause numbers are from the MQTT 3.1.1 standard.

/** Remaining Length, variable-length encoding (MQTT-2.2.3). */
function remainingLength(n: number): Buffer {
  const out: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    out.push(byte)
  } while (n > 0)
  return Buffer.from(out)
}

function utf8(s: string): Buffer {
  const b = Buffer.from(s)
  const len = Buffer.alloc(2)
  len.writeUInt16BE(b.length)
  return Buffer.concat([len, b])
}

function packet(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([firstByte]), remainingLength(body.length), body])
}

/** CONNECT with clean session, user name and password (MQTT-3.1). */
export function connectPacket(clientId: string, username: string, password: string, keepaliveS: number): Buffer {
  const flags = 0x80 | 0x40 | 0x02 // user name, password, clean session
  const header = Buffer.concat([utf8('MQTT'), Buffer.from([4, flags, keepaliveS >> 8, keepaliveS & 0xff])])
  return packet(0x10, Buffer.concat([header, utf8(clientId), utf8(username), utf8(password)]))
}

/**
 * PUBLISH (MQTT-3.3). For QoS 1 the packet identifier sits at a fixed
 * offset, so a caller can reuse one buffer per topic and patch the id.
 */
export function publishPacket(topic: string | Buffer, payload: Buffer, qos: 0 | 1, packetId = 0): Buffer {
  // One allocation per packet: the simulator must cost less than what it drives.
  const t = typeof topic === 'string' ? Buffer.from(topic) : topic
  const bodyLength = 2 + t.length + (qos > 0 ? 2 : 0) + payload.length
  let lengthBytes = 1
  for (let n = bodyLength; n >= 128; n = Math.floor(n / 128)) lengthBytes++
  const out = Buffer.allocUnsafe(1 + lengthBytes + bodyLength)
  out[0] = 0x30 | (qos << 1)
  let off = 1
  let n = bodyLength
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    out[off++] = byte
  } while (n > 0)
  out.writeUInt16BE(t.length, off)
  off += 2
  off += t.copy(out, off)
  if (qos > 0) {
    out.writeUInt16BE(packetId, off)
    off += 2
  }
  payload.copy(out, off)
  return out
}

export const PINGREQ = Buffer.from([0xc0, 0x00])
export const DISCONNECT = Buffer.from([0xe0, 0x00])

export type ServerPacket =
  | { type: 'connack'; returnCode: number }
  | { type: 'puback'; packetId: number }
  | { type: 'pingresp' }
  | { type: 'other'; firstByte: number }

/** Splits a byte stream from the broker into packets. Keeps a partial packet between chunks. */
export class PacketReader {
  #pending: Buffer = Buffer.alloc(0)

  push(chunk: Buffer): ServerPacket[] {
    const buf = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk
    const out: ServerPacket[] = []
    let off = 0
    for (;;) {
      if (buf.length - off < 2) break
      let len = 0
      let mult = 1
      let i = off + 1
      let complete = false
      for (; i < buf.length && i < off + 5; i++) {
        const b = buf[i] as number
        len += (b & 0x7f) * mult
        mult *= 128
        if ((b & 0x80) === 0) {
          complete = true
          i++
          break
        }
      }
      if (!complete || buf.length - i < len) break
      const first = buf[off] as number
      const body = buf.subarray(i, i + len)
      switch (first >> 4) {
        case 2:
          out.push({ type: 'connack', returnCode: body[1] ?? 255 })
          break
        case 4:
          out.push({ type: 'puback', packetId: body.readUInt16BE(0) })
          break
        case 13:
          out.push({ type: 'pingresp' })
          break
        default:
          out.push({ type: 'other', firstByte: first })
      }
      off = i + len
    }
    this.#pending = off < buf.length ? Buffer.from(buf.subarray(off)) : Buffer.alloc(0)
    return out
  }
}
