/**
 * Software TCP segmentation for IPv4 (the device's side of VIRTIO_NET_F_HOST_TSO4, virtio 1.2,
 * 5.1.6.2): a GSO frame from a VM whose destination cannot take it whole is cut into frames of
 * at most gso_size payload bytes. Per segment (RFC 791, RFC 793): the Ethernet, IPv4 and TCP
 * headers are copied; IPv4 total length, identification (+1 per segment) and header checksum are
 * rewritten; the TCP sequence number advances by the payload already sent; FIN and PSH stay on
 * the last segment only, CWR on the first only; the TCP checksum is computed in full.
 *
 * Input: `src` with the virtio header at 0 and the frame at NET_HDR_BYTES (`len` bytes). Each
 * segment is built in `out` (header zeroed at 0, frame at NET_HDR_BYTES) and handed to `emit`
 * before the next is built. Returns the number of segments, or 0 when the frame is not a TCP/IPv4
 * frame this can segment (the caller drops and counts it). Never throws; copies as copy.ts does.
 */
import { NET_HDR_BYTES } from '../virtio/constants.js';
import { copyBytes } from './copy.js';

function sum16(b: Uint8Array, off: number, len: number, init: number): number {
  let s = init;
  let i = 0;
  for (; i + 1 < len; i += 2) s += (b[off + i]! << 8) | b[off + i + 1]!;
  if (i < len) s += b[off + i]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

export function segmentTcp4(src: Uint8Array, len: number, out: Uint8Array, emit: (segLen: number) => void): number {
  const f = NET_HDR_BYTES;
  const mss = src[4]! | (src[5]! << 8);
  if (len < 14 + 20 + 20 || src[f + 12] !== 0x08 || src[f + 13] !== 0x00 || mss === 0) return 0;
  const ip = f + 14;
  if (src[ip]! >> 4 !== 4 || src[ip + 9] !== 6) return 0;
  const ihl = (src[ip]! & 15) * 4;
  if (ihl < 20) return 0;
  const tcp = ip + ihl;
  if (tcp + 20 > f + len) return 0;
  const doff = (src[tcp + 12]! >> 4) * 4;
  const hdrEnd = tcp + doff;
  if (doff < 20 || hdrEnd > f + len) return 0;
  const hdrBytes = hdrEnd - f; // Ethernet + IP + TCP headers
  const payload = f + len - hdrEnd;
  if (payload <= 0 || hdrBytes + mss > out.length - f) return 0;
  const seq0 = ((src[tcp + 4]! << 24) | (src[tcp + 5]! << 16) | (src[tcp + 6]! << 8) | src[tcp + 7]!) >>> 0;
  const id0 = (src[ip + 4]! << 8) | src[ip + 5]!;
  const flags = src[tcp + 13]!;
  let segs = 0;
  for (let done = 0; done < payload; done += mss) {
    const chunk = Math.min(mss, payload - done);
    const last = done + chunk >= payload;
    out.fill(0, 0, f);
    copyBytes(out, f, src, f, hdrBytes);
    copyBytes(out, f + hdrBytes, src, hdrEnd + done, chunk);
    const oip = f + 14;
    const otcp = oip + ihl;
    const total = ihl + doff + chunk;
    out[oip + 2] = total >> 8;
    out[oip + 3] = total & 0xff;
    const id = (id0 + segs) & 0xffff;
    out[oip + 4] = id >> 8;
    out[oip + 5] = id & 0xff;
    out[oip + 10] = out[oip + 11] = 0;
    const ipSum = ~sum16(out, oip, ihl, 0) & 0xffff;
    out[oip + 10] = ipSum >> 8;
    out[oip + 11] = ipSum & 0xff;
    const seq = (seq0 + done) >>> 0;
    out[otcp + 4] = seq >>> 24;
    out[otcp + 5] = (seq >>> 16) & 0xff;
    out[otcp + 6] = (seq >>> 8) & 0xff;
    out[otcp + 7] = seq & 0xff;
    let fl = flags;
    if (!last) fl &= ~0x09; // FIN (0x01), PSH (0x08) only on the last segment
    if (segs > 0) fl &= ~0x80; // CWR only on the first
    out[otcp + 13] = fl;
    out[otcp + 16] = out[otcp + 17] = 0;
    // pseudo-header: source, destination, zero + protocol, TCP length (RFC 793, 3.1)
    const pseudo = sum16(out, oip + 12, 8, 6 + doff + chunk);
    const tcpSum = ~sum16(out, otcp, doff + chunk, pseudo) & 0xffff;
    out[otcp + 16] = tcpSum >> 8;
    out[otcp + 17] = tcpSum & 0xff;
    segs++;
    emit(14 + total);
  }
  return segs;
}
