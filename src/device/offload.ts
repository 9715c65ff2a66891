/**
 * Checksum completion for frames whose sender used VIRTIO_NET_F_CSUM (virtio 1.2, 5.1.6.2): the
 * driver leaves the 16-bit ones' complement sum of [csum_start, end) to the device, with the
 * pseudo-header sum already in the checksum field, and the device stores the result at
 * csum_start + csum_offset. The engine does this when such a frame goes anywhere that cannot take
 * a partial checksum (an isolate VIF, the uplink, another engine), so those receive a normal frame.
 * headerOk() in virtio-net-device.ts checked that both offsets lie inside the frame.
 * (A UDP sum that comes out 0 is stored as 0; RFC 768 would send 0xffff. Rare, harmless over IPv4.)
 */
import { NET_HDR_BYTES, NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4 } from '../virtio/constants.js';
import { segmentTcp4 } from './tso.js';
import { VC } from '../layout/counters.js';
import type { Engine } from './engine.js';
import type { EngineVif } from './engine-vif.js';

/**
 * A frame from VIF `v` in the engine's staging buffer (`st`: header at 0, frame at 12) with a
 * partial checksum or GSO. Unicast to a VIF on this engine whose driver takes it as is: delivered
 * there with its header (returns true). A GSO frame that cannot be: dropped, counted
 * tx_gso_undeliverable (true). Otherwise the checksum is completed here and the caller switches
 * the frame like any other (false). A TCP/IPv4 GSO frame that cannot go whole is segmented in
 * software (tso.ts) and each segment switched; any other GSO frame that cannot go whole is
 * dropped, counted tx_gso_undeliverable (true). Promiscuous copies of passed-through frames are
 * not made.
 */
/** Segment buffer of this engine thread (one module instance per worker), frames at 4 mod 8. */
const seg = {
  buf: new Uint8Array(Math.ceil((NET_HDR_BYTES + 9018 + 64) / 64) * 64),
  buf32: null as unknown as Int32Array,
  eng: null as unknown as Engine,
  v: null as unknown as EngineVif,
  emit: (segLen: number): void => {
    const c = seg.eng.c;
    c[seg.v.counterBase + VC.tx_frames] += 1;
    c[seg.v.counterBase + VC.tx_bytes] += segLen;
    seg.eng.sw.fromVif(seg.v, seg.buf, seg.buf32, NET_HDR_BYTES, segLen);
  },
};
seg.buf32 = new Int32Array(seg.buf.buffer);

export function routeOffloaded(eng: Engine, v: EngineVif, st: Uint8Array, st32: Int32Array, len: number): boolean {
  const f = NET_HDR_BYTES;
  if ((st[f]! & 1) === 0) {
    const slot = eng.sw.fdb.lookup(v.segment, st, f);
    const dst = slot >= 0 ? eng.vifs[slot] : undefined;
    // Whole only to a driver that takes it and is not under a guest-RX limit (the QoS hold queue
    // keeps frames without their virtio header); otherwise checksum or segment it here.
    const rxLimited = eng.qos !== null && eng.qos.rxLimited[slot] === 1;
    if (dst !== undefined && dst.dev !== null && !rxLimited && dst.dev.takesOffloaded(st[0]!, st[1]!)) {
      eng.c[v.counterBase + VC.tx_frames] += 1;
      eng.c[v.counterBase + VC.tx_bytes] += len;
      eng.deliver(dst, st, st32, f, len, true);
      return true;
    }
  }
  if (st[1] === NET_HDR_GSO_TCPV4) {
    seg.eng = eng;
    seg.v = v;
    if (segmentTcp4(st, len, seg.buf, seg.emit) > 0) {
      eng.c[v.counterBase + VC.tx_gso_segmented_frames] += 1;
      return true;
    }
  }
  if (st[1] !== 0) {
    eng.c[v.counterBase + VC.tx_gso_undeliverable] += 1;
    return true;
  }
  completeChecksum(st, len);
  return false;
}

/** b: virtio header at 0, frame at NET_HDR_BYTES, `len` frame bytes. Clears NEEDS_CSUM. */
export function completeChecksum(b: Uint8Array, len: number): void {
  const start = NET_HDR_BYTES + (b[6]! | (b[7]! << 8));
  const at = start + (b[8]! | (b[9]! << 8));
  const end = NET_HDR_BYTES + len;
  let s = 0;
  let i = start;
  for (; i + 1 < end; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (i < end) s += b[i]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  s = ~s & 0xffff;
  b[at] = s >>> 8;
  b[at + 1] = s & 0xff;
  b[0] = b[0]! & ~NET_HDR_F_NEEDS_CSUM;
}
