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
  NET_HDR_BYTES, NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_NONE, NET_HDR_GSO_TCPV4, NET_HDR_GSO_TCPV6, MAX_GSO_FRAME,
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

/**
 * Checksum and segmentation offloads negotiated by the driver (virtio 1.2, 5.1.3, 5.1.6.2):
 * `csum`/`hostTso*` let the driver send partial checksums / GSO frames; `guestCsum`/`guestTso*`
 * let the device hand it such frames. All false for isolate VIFs (they negotiate none).
 */
export interface Offloads {
  csum: boolean;
  hostTso4: boolean;
  hostTso6: boolean;
  guestCsum: boolean;
  guestTso4: boolean;
  guestTso6: boolean;
}
export const NO_OFFLOADS: Offloads = { csum: false, hostTso4: false, hostTso6: false, guestCsum: false, guestTso4: false, guestTso6: false };

export class VirtioNetDevice {
  readonly mem: GuestMemory;
  readonly fromGuestQ: DeviceQueue; // virtio transmitq1
  readonly toGuestQ: DeviceQueue; // virtio receiveq1
  private readonly c: Float64Array;
  private readonly cb: number;
  mtu: number;
  linkUp: boolean;
  offloads: Offloads = NO_OFFLOADS;
  /** Largest frame toGuest accepts; raised only while placing a GSO frame (toGuestOffloaded). */
  private rxLimit = -1;
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
    const o = this.offloads;
    const limit = NET_HDR_BYTES + (o.hostTso4 || o.hostTso6 ? MAX_GSO_FRAME : maxFrameBytes(this.mtu));
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
      else if (!this.headerOk(staging, total - NET_HDR_BYTES)) bad = VC.tx_bad_header;
      else if (staging[1] === NET_HDR_GSO_NONE && total - NET_HDR_BYTES > maxFrameBytes(this.mtu)) bad = VC.tx_oversize;
      else if (!this.linkUp) bad = VC.tx_link_down;
    }
    if (bad >= 0) {
      this.count(bad);
      return TX_DROPPED;
    }
    return total - NET_HDR_BYTES;
  }

  /**
   * A transmit header may ask for a partial checksum or segmentation only if that was negotiated
   * (5.1.6.2.1: the driver MUST NOT set NEEDS_CSUM or a GSO type otherwise), and what it says must
   * lie inside the frame (the device acts on it or passes it on). Other flag bits are ignored
   * (5.1.6.2.2: the device MUST ignore flag bits it does not recognize). ECN is not offered.
   */
  private headerOk(h: Uint8Array, frameLen: number): boolean {
    const o = this.offloads;
    const gso = h[1]!;
    if ((h[0]! & NET_HDR_F_NEEDS_CSUM) !== 0) {
      if (!o.csum) return false;
      const start = h[6]! | (h[7]! << 8);
      const offset = h[8]! | (h[9]! << 8);
      if (start + offset + 2 > frameLen) return false;
    }
    if (gso === NET_HDR_GSO_NONE) return true;
    if (!(gso === NET_HDR_GSO_TCPV4 ? o.hostTso4 : gso === NET_HDR_GSO_TCPV6 && o.hostTso6)) return false;
    const hdrLen = h[2]! | (h[3]! << 8);
    const gsoSize = h[4]! | (h[5]! << 8);
    return (h[0]! & NET_HDR_F_NEEDS_CSUM) !== 0 && gsoSize > 0 && hdrLen <= frameLen;
  }

  /** Can this VIF's driver take a frame with this transmit header as is? (5.1.6.4.1) */
  takesOffloaded(flags: number, gso: number): boolean {
    const o = this.offloads;
    if ((flags & NET_HDR_F_NEEDS_CSUM) !== 0 && !o.guestCsum) return false;
    return gso === NET_HDR_GSO_NONE || (gso === NET_HDR_GSO_TCPV4 ? o.guestTso4 : gso === NET_HDR_GSO_TCPV6 && o.guestTso6);
  }

  /**
   * Place a frame whose virtio header (from a sender with offloads) is at src[off-12..off) and
   * pass that header on: NEEDS_CSUM with its csum_start/offset, and the GSO fields (5.1.6.4:
   * the device MAY do so when GUEST_CSUM / GUEST_TSO* were negotiated; takesOffloaded() checked).
   */
  toGuestOffloaded(src: Uint8Array, src32: Int32Array, off: number, len: number): number {
    const h = this.rxHeader;
    for (let i = 0; i < 10; i++) h[i] = src[off - NET_HDR_BYTES + i]!;
    this.rxLimit = MAX_GSO_FRAME;
    const r = this.toGuest(src, src32, off, len);
    this.rxLimit = -1;
    for (let i = 0; i < 10; i++) h[i] = 0;
    return r;
  }

  /**
   * Place one frame (src[off..off+len], already in device memory; src32 an Int32 view of the same
   * bytes) into the guest's receive queue. Returns RX_OK, RX_DROPPED (counted) or RX_VIOLATION.
   */
  toGuest(src: Uint8Array, src32: Int32Array, off: number, len: number): number {
    if (!this.linkUp) return this.rxDrop(VC.rx_link_down);
    if (len > (this.rxLimit > 0 ? this.rxLimit : maxFrameBytes(this.mtu))) return this.rxDrop(VC.rx_oversize);
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
