/**
 * The device half of one virtio-net VIF: takes frames from the guest's transmit queue, places
 * frames into its receive queue, and decides interrupts. It is the only virtio logic in svnic and
 * does not know what kind of guest it serves (isolate or VM): memory comes in as a GuestMemory.
 *
 * Error tiers (ARCHITECTURE.md rule 7):
 *  - a bad buffer (address, length, direction, header) drops that frame: the chain is completed
 *    with length 0 and a named counter moves;
 *  - a broken ring (index out of range, loop, avail jump, indirect not negotiated) is a protocol
 *    violation: the queue stops and the owner puts the VIF into NEEDS_RESET (virtio 1.2, 2.1.2:
 *    "the device SHOULD set DEVICE_NEEDS_RESET when it enters an error state that a reset is
 *    needed").
 */
import type { GuestMemory } from '../virtio/guest-memory.js';
import { DeviceQueue, EMPTY, VIOLATED, CHAIN_END, Violation, type QueueAddresses } from '../virtio/device-queue.js';
import {
  NET_HDR_BYTES, NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_NONE,
  VIRTQ_DESC_F_WRITE,
} from '../virtio/constants.js';
import { VC } from '../layout/counters.js';
import { maxFrameBytes } from '../layout/vif.js';
import { copyFrame } from './copy.js';

export const MIN_FRAME = 14; // an Ethernet header

/** Result of fromGuest() other than a frame length. */
export const TX_DROPPED = 0;
export const TX_EMPTY = -1;
export const TX_VIOLATION = -2;

/** Result of toGuest(). */
export const RX_OK = 0;
export const RX_DROPPED = 1;
export const RX_VIOLATION = 2;

const VIOLATION_COUNTER: Record<Violation, number> = {
  [Violation.NONE]: -1,
  [Violation.AVAIL_JUMP]: VC.proto_avail_jump,
  [Violation.BAD_DESC_INDEX]: VC.proto_bad_desc_index,
  [Violation.DESC_LOOP]: VC.proto_desc_loop,
  [Violation.INDIRECT]: VC.proto_indirect,
};

export interface VirtioNetConfig {
  mtu: number;
  linkUp: boolean;
}

export class VirtioNetDevice {
  readonly mem: GuestMemory;
  readonly fromGuestQ: DeviceQueue; // virtio transmitq1
  readonly toGuestQ: DeviceQueue; // virtio receiveq1
  private readonly c: Float64Array;
  private readonly cb: number;
  mtu: number;
  linkUp: boolean;
  /** Byte-counted header template written before every frame placed in the receive queue. */
  private readonly rxHeader = new Uint8Array(NET_HDR_BYTES);

  /** VIRTIO_NET_F_MRG_RXBUF negotiated: a frame may span several receive chains (5.1.6.3.2, 5.1.6.4). */
  readonly mrgRxbuf: boolean;
  /** Chains taken for the frame being placed (mergeable path); preallocated, no allocation per frame. */
  private readonly mrgHeads: Int32Array;
  private readonly mrgLens: Int32Array;

  constructor(mem: GuestMemory, toGuest: QueueAddresses, fromGuest: QueueAddresses, eventIdx: boolean,
    cfg: VirtioNetConfig, counters: Float64Array, counterBase: number, mrgRxbuf = false) {
    this.mem = mem;
    this.toGuestQ = new DeviceQueue(mem, toGuest, eventIdx);
    this.fromGuestQ = new DeviceQueue(mem, fromGuest, eventIdx);
    this.mtu = cfg.mtu;
    this.linkUp = cfg.linkUp;
    this.c = counters;
    this.cb = counterBase;
    this.rxHeader[10] = 1; // num_buffers = 1 (5.1.6.4: set even without MRG_RXBUF in VERSION_1)
    this.mrgRxbuf = mrgRxbuf;
    this.mrgHeads = new Int32Array(mrgRxbuf ? this.toGuestQ.size : 0);
    this.mrgLens = new Int32Array(mrgRxbuf ? this.toGuestQ.size : 0);
  }

  count(counter: number, n = 1): void {
    this.c[this.cb + counter] += n;
  }

  /** A queue broke the ring rules: count the reason once; the owner moves the VIF to NEEDS_RESET. */
  private violated<R extends number>(q: DeviceQueue, result: R): R {
    const c = VIOLATION_COUNTER[q.violation];
    if (c >= 0) this.count(c);
    return result;
  }

  /**
   * Take one frame from the guest's transmit queue and copy it (header + frame) into `staging`
   * (with `staging32`, an Int32 view of the same bytes) starting at 0. Returns the frame length (frame at staging[NET_HDR_BYTES..]), TX_DROPPED when a
   * bad chain was consumed and counted, TX_EMPTY, or TX_VIOLATION.
   */
  fromGuest(staging: Uint8Array, staging32: Int32Array): number {
    const q = this.fromGuestQ;
    const head = q.nextHead();
    if (head === EMPTY) return TX_EMPTY;
    if (head === VIOLATED) return this.violated(q, TX_VIOLATION);
    const limit = NET_HDR_BYTES + maxFrameBytes(this.mtu);
    let total = 0;
    let bad = -1;
    for (let n = 1; ; n++) {
      if (!q.descOk(n)) return this.violated(q, TX_VIOLATION);
      const flags = q.dFlags;
      const len = q.dLen;
      if (bad < 0) {
        if (flags & VIRTQ_DESC_F_WRITE) bad = VC.tx_bad_desc; // 2.7.4.2: device-writable in a TX chain
        else if (len === 0) bad = VC.tx_bad_desc;
        else if (total + len > limit) bad = VC.tx_oversize;
        else {
          const off = this.mem.resolve(q.dAddrLo, q.dAddrHi, len);
          if (off < 0) bad = VC.tx_bad_addr;
          else {
            copyFrame(staging, staging32, total, this.mem.hit, this.mem.hit32, off, len);
            total += len;
          }
        }
      }
      const r = q.nextInChain();
      if (r === CHAIN_END) break;
      if (r === VIOLATED) return this.violated(q, TX_VIOLATION);
    }
    q.addUsed(head, 0); // 2.7.8: len = bytes written by the device; none for TX
    if (bad < 0) {
      if (total < NET_HDR_BYTES + MIN_FRAME) bad = VC.tx_runt;
      else if (!this.headerOk(staging)) bad = VC.tx_bad_header;
      else if (!this.linkUp) bad = VC.tx_link_down;
    }
    if (bad >= 0) {
      this.count(bad);
      return TX_DROPPED;
    }
    return total - NET_HDR_BYTES;
  }

  /**
   * svnic offers no checksum or segmentation offload, so it cannot honour a transmit header that
   * asks for one (5.1.6.2.1: the driver MUST NOT set NEEDS_CSUM or a GSO type unless negotiated).
   * Other flag bits are ignored (5.1.6.2.2: the device MUST ignore flag bits it does not recognize).
   */
  private headerOk(h: Uint8Array): boolean {
    return (h[0]! & NET_HDR_F_NEEDS_CSUM) === 0 && h[1] === NET_HDR_GSO_NONE;
  }

  /**
   * Place one frame (src[off..off+len], already in device memory; src32 an Int32 view of the same
   * bytes) into the guest's receive queue. Returns RX_OK, RX_DROPPED (counted) or RX_VIOLATION.
   */
  toGuest(src: Uint8Array, src32: Int32Array, off: number, len: number): number {
    if (!this.linkUp) return this.rxDrop(VC.rx_link_down);
    if (len > maxFrameBytes(this.mtu)) return this.rxDrop(VC.rx_oversize);
    if (this.mrgRxbuf) return this.toGuestMerged(src, src32, off, len);
    const q = this.toGuestQ;
    const head = q.nextHead();
    if (head === EMPTY) return this.rxDrop(VC.rx_no_buffer);
    if (head === VIOLATED) return this.violated(q, RX_VIOLATION);
    const need = NET_HDR_BYTES + len;
    let written = 0;
    let bad = -1;
    for (let n = 1; ; n++) {
      if (!q.descOk(n)) return this.violated(q, RX_VIOLATION);
      const flags = q.dFlags;
      if (bad < 0 && written < need) {
        const dlen = q.dLen;
        if ((flags & VIRTQ_DESC_F_WRITE) === 0 || dlen === 0) bad = VC.rx_bad_desc; // 2.7.4.2
        else {
          const chunk = Math.min(dlen, need - written);
          const dst = this.mem.resolve(q.dAddrLo, q.dAddrHi, chunk);
          if (dst < 0) bad = VC.rx_bad_addr;
          else {
            this.copyOut(src, src32, off, dst, written, chunk);
            written += chunk;
          }
        }
      }
      const r = q.nextInChain();
      if (r === CHAIN_END) break;
      if (r === VIOLATED) return this.violated(q, RX_VIOLATION);
    }
    if (bad < 0 && written < need) bad = VC.rx_buffer_too_small;
    if (bad >= 0) {
      q.addUsed(head, 0);
      return this.rxDrop(bad);
    }
    q.addUsed(head, need);
    this.count(VC.rx_frames);
    this.count(VC.rx_bytes, len);
    return RX_OK;
  }

  /**
   * MRG_RXBUF placement (virtio 1.2, 5.1.6.4.2): fill as many receive chains as the frame needs,
   * then set num_buffers in the header (in the first chain) and complete them in order. If the
   * ring runs out part way, the chains taken are given back (nothing was published) and the frame
   * is dropped as rx_no_buffer. A bad buffer completes every chain taken with length 0.
   */
  private toGuestMerged(src: Uint8Array, src32: Int32Array, off: number, len: number): number {
    const q = this.toGuestQ;
    const need = NET_HDR_BYTES + len;
    let written = 0;
    let nbufs = 0;
    let bad = -1;
    let hdrMem: Uint8Array | null = null;
    let hdrOff = 0;
    while (written < need && bad < 0) {
      const head = q.nextHead();
      if (head === EMPTY) {
        q.giveBack(nbufs); // 2.7.13: not yet used, so the driver never sees them taken
        return this.rxDrop(VC.rx_no_buffer);
      }
      if (head === VIOLATED) return this.violated(q, RX_VIOLATION);
      const start = written;
      for (let n = 1; ; n++) {
        if (!q.descOk(n)) return this.violated(q, RX_VIOLATION);
        const flags = q.dFlags;
        if (bad < 0 && written < need) {
          const dlen = q.dLen;
          if ((flags & VIRTQ_DESC_F_WRITE) === 0 || dlen === 0) bad = VC.rx_bad_desc; // 2.7.4.2
          else if (written === 0 && dlen < NET_HDR_BYTES) bad = VC.rx_buffer_too_small; // header in one piece
          else {
            const chunk = Math.min(dlen, need - written);
            const dst = this.mem.resolve(q.dAddrLo, q.dAddrHi, chunk);
            if (dst < 0) bad = VC.rx_bad_addr;
            else {
              if (written === 0) {
                hdrMem = this.mem.hit;
                hdrOff = dst;
              }
              this.copyOut(src, src32, off, dst, written, chunk);
              written += chunk;
            }
          }
        }
        const r = q.nextInChain();
        if (r === CHAIN_END) break;
        if (r === VIOLATED) return this.violated(q, RX_VIOLATION);
      }
      this.mrgHeads[nbufs] = head;
      this.mrgLens[nbufs] = written - start;
      nbufs++;
    }
    if (bad >= 0) {
      for (let i = 0; i < nbufs; i++) q.addUsed(this.mrgHeads[i]!, 0);
      return this.rxDrop(bad);
    }
    hdrMem![hdrOff + 10] = nbufs & 0xff; // num_buffers, le16 (5.1.6)
    hdrMem![hdrOff + 11] = nbufs >>> 8;
    for (let i = 0; i < nbufs; i++) q.addUsed(this.mrgHeads[i]!, this.mrgLens[i]!);
    this.count(VC.rx_frames);
    this.count(VC.rx_bytes, len);
    return RX_OK;
  }

  /** Copy bytes [pos, pos+chunk) of (virtio header ++ frame) into guest memory at dst. */
  private copyOut(src: Uint8Array, src32: Int32Array, off: number, dst: number, pos: number, chunk: number): void {
    const out = this.mem.hit;
    let p = pos;
    let d = dst;
    let left = chunk;
    if (p < NET_HDR_BYTES) {
      const h = Math.min(NET_HDR_BYTES - p, left);
      for (let i = 0; i < h; i++) out[d + i] = this.rxHeader[p + i]!;
      p += h;
      d += h;
      left -= h;
    }
    if (left > 0) {
      copyFrame(out, this.mem.hit32, d, src, src32, off + p - NET_HDR_BYTES, left);
    }
  }

  private rxDrop(counter: number): number {
    this.count(counter);
    return RX_DROPPED;
  }

  /** Frames the guest made available for transmit that the device has not taken (for unplug). */
  unsentFromGuest(): number {
    const n = this.fromGuestQ.pending();
    return n < 0 ? 0 : n;
  }
}
