/**
 * The device's embedded L2 switch (like an SR-IOV NIC's VEB): unicast by (segment, destination
 * MAC), broadcast and multicast replicated to the segment's VIFs whose filter accepts them,
 * unknown unicast to the uplink. Also the engine's end of the device-owned frame rings: to and
 * from other engines, to and from the uplink.
 *
 * Accounting: every frame that enters the switch (a guest's tx_frames, uplink_rx_frames,
 * fwd_in_frames) produces `copies` outcomes: a delivery or a counted drop at a VIF, a frame on a
 * ring (fwd_out_frames, uplink_tx_frames) or a counted device drop. `flood_copies` adds the copies
 * beyond the first; a frame with no outcome counts `no_receiver`. So for a quiet device:
 *   frames in + flood_copies = outcomes.
 *
 * Engine-to-engine ring meta (u32):
 *   bit 31 FLOOD | bits 16..29 segment | bits 0..15 VIF slot (unicast: target; flood: source, or
 *   0xffff when the frame came from the uplink). Uplink ring meta: the segment.
 */
import { FrameRing } from '../layout/frame-ring.js';
import { EC } from '../layout/counters.js';
import { wake } from '../layout/doorbell.js';
import { MacTable } from './mac-table.js';
import { copyFrame } from './copy.js';
import { MIN_FRAME } from './virtio-net-device.js';
import type { EngineVif } from './engine-vif.js';
import type { Engine } from './engine.js';

export const FWD_FLOOD = 0x80000000;
export const FWD_SLOT_MASK = 0xffff;
export const NO_SLOT = 0xffff;
export const MAX_SEGMENT = 0x3fff;
const ECHO_AT = 12; // frames at 4 mod 8, as everywhere (device/copy.ts)
export const fwdSegment = (meta: number): number => (meta >>> 16) & MAX_SEGMENT;

interface Segment {
  local: EngineVif[];
  promisc: EngineVif[];
}
const EMPTY_SEGMENT: Segment = { local: [], promisc: [] };

export class Switch {
  fdb = new MacTable();
  readonly slotEngine: Int16Array;
  /** Indexed by segment (an array, not a Map: one load per frame, no hashing). */
  private segments: Segment[] = new Array<Segment>(MAX_SEGMENT + 1).fill(EMPTY_SEGMENT);
  private readonly eng: Engine;
  private readonly me: number;
  private readonly c: Float64Array;
  private readonly ec: number;
  // engine-to-engine rings (index = peer engine; null for self)
  fwdOut: (FrameRing | null)[];
  fwdOutWake: (Int32Array | null)[];
  fwdIn: FrameRing[] = [];
  // uplink rings; toUplink === null means the uplink is a counted sink (`null` uplink)
  toUplink: FrameRing | null = null;
  toUplinkWake: Int32Array | null = null;
  fromUplink: FrameRing[] = [];
  /** Echo uplink: frames sent to the uplink come straight back with their MACs swapped. */
  reflect = false;
  private readonly echo8 = new Uint8Array(Math.ceil((ECHO_AT + 14 + 4 + 9000) / 64) * 64);
  private readonly echo32 = new Int32Array(this.echo8.buffer);
  maxFrame = 14 + 4 + 9000;

  constructor(eng: Engine, me: number, engines: number, maxVifs: number) {
    this.eng = eng;
    this.me = me;
    this.c = eng.c;
    this.ec = eng.ec;
    this.slotEngine = new Int16Array(maxVifs).fill(-1);
    this.fwdOut = new Array(engines).fill(null);
    this.fwdOutWake = new Array(engines).fill(null);
  }

  rebuildSegments(): void {
    const m = new Array<Segment>(MAX_SEGMENT + 1).fill(EMPTY_SEGMENT);
    for (const v of this.eng.vifs) {
      if (v === undefined) continue;
      let s = m[v.segment]!;
      if (s === EMPTY_SEGMENT) m[v.segment] = s = { local: [], promisc: [] };
      s.local.push(v);
      if (v.promiscuous) s.promisc.push(v);
    }
    this.segments = m;
  }

  private seg(segment: number): Segment {
    return this.segments[segment]!;
  }

  private countCopies(n: number): void {
    if (n === 0) this.c[this.ec + EC.no_receiver] += 1;
    else if (n > 1) this.c[this.ec + EC.flood_copies] += n - 1;
  }

  /** A frame a local VIF sent (already checked for spoofing), in device memory at buf[off..]. */
  fromVif(src: EngineVif, buf: Uint8Array, buf32: Int32Array, off: number, len: number): void {
    const segment = src.segment;
    if ((buf[off]! & 1) !== 0) {
      const n = this.floodLocal(segment, src.slot, buf, buf32, off, len) +
        this.floodEngines(segment, src.slot, buf, buf32, off, len) + this.toUplinkRing(segment, buf, buf32, off, len);
      this.countCopies(n);
      return;
    }
    const slot = this.fdb.lookup(segment, buf, off);
    let n = slot >= 0 ? this.unicast(slot, segment, buf, buf32, off, len) : this.toUplinkRing(segment, buf, buf32, off, len);
    n += this.promiscCopies(segment, src.slot, slot, buf, buf32, off, len);
    this.countCopies(n);
  }

  /** A frame that arrived from the uplink. */
  private fromUplinkFrame(segment: number, buf: Uint8Array, buf32: Int32Array, off: number, len: number): void {
    if ((buf[off]! & 1) !== 0) {
      this.countCopies(this.floodLocal(segment, NO_SLOT, buf, buf32, off, len) + this.floodEngines(segment, NO_SLOT, buf, buf32, off, len));
      return;
    }
    const slot = this.fdb.lookup(segment, buf, off);
    let n = slot >= 0 ? this.unicast(slot, segment, buf, buf32, off, len) : 0;
    n += this.promiscCopies(segment, NO_SLOT, slot, buf, buf32, off, len);
    if (slot < 0 && n === 0) this.c[this.ec + EC.uplink_rx_unknown_dst] += 1;
    else this.countCopies(n);
  }

  /** A frame another engine forwarded to this one. */
  private fromEngineFrame(meta: number, buf: Uint8Array, buf32: Int32Array, off: number, len: number): void {
    const segment = fwdSegment(meta);
    const slot = meta & FWD_SLOT_MASK;
    if ((meta & FWD_FLOOD) !== 0) {
      this.countCopies(this.floodLocal(segment, slot, buf, buf32, off, len));
      return;
    }
    const v = this.eng.vifs[slot];
    let n = 1;
    if (v === undefined || v.segment !== segment) this.c[this.ec + EC.vif_gone] += 1;
    else this.eng.deliver(v, buf, buf32, off, len);
    n += this.promiscCopies(segment, NO_SLOT, slot, buf, buf32, off, len);
    this.countCopies(n);
  }

  private unicast(slot: number, segment: number, buf: Uint8Array, buf32: Int32Array, off: number, len: number): number {
    const e = this.slotEngine[slot]!;
    if (e === this.me) {
      const v = this.eng.vifs[slot];
      if (v === undefined) this.c[this.ec + EC.vif_gone] += 1;
      else this.eng.deliver(v, buf, buf32, off, len);
      return 1;
    }
    if (e < 0) {
      this.c[this.ec + EC.vif_gone] += 1;
      return 1;
    }
    return this.toEngine(e, (segment << 16) | slot, buf, buf32, off, len);
  }

  private floodLocal(segment: number, except: number, buf: Uint8Array, buf32: Int32Array, off: number, len: number): number {
    const local = this.seg(segment).local;
    let n = 0;
    for (let i = 0; i < local.length; i++) {
      const v = local[i]!;
      if (v.slot !== except && v.accepts(buf, off)) {
        this.eng.deliver(v, buf, buf32, off, len);
        n++;
      }
    }
    return n;
  }

  private floodEngines(segment: number, srcSlot: number, buf: Uint8Array, buf32: Int32Array, off: number, len: number): number {
    let n = 0;
    const out = this.fwdOut;
    for (let e = 0; e < out.length; e++) {
      if (out[e] !== null) n += this.toEngine(e, (FWD_FLOOD | (segment << 16) | srcSlot) >>> 0, buf, buf32, off, len);
    }
    return n;
  }

  private promiscCopies(segment: number, src: number, dst: number, buf: Uint8Array, buf32: Int32Array, off: number, len: number): number {
    const p = this.seg(segment).promisc;
    let n = 0;
    for (let i = 0; i < p.length; i++) {
      const v = p[i]!;
      if (v.slot !== src && v.slot !== dst) {
        this.eng.deliver(v, buf, buf32, off, len);
        n++;
      }
    }
    return n;
  }

  private toEngine(e: number, meta: number, buf: Uint8Array, buf32: Int32Array, off: number, len: number): number {
    const r = this.fwdOut[e]!;
    const slot = r.reserve();
    if (slot < 0) {
      this.c[this.ec + EC.fwd_full] += 1;
      return 1;
    }
    copyFrame(r.bytes, r.i32, FrameRing.data(slot), buf, buf32, off, len);
    r.commit(slot, len, meta);
    this.c[this.ec + EC.fwd_out_frames] += 1;
    return 1;
  }

  private toUplinkRing(segment: number, buf: Uint8Array, buf32: Int32Array, off: number, len: number): number {
    if (this.reflect) return this.reflectBack(segment, buf, buf32, off, len);
    const r = this.toUplink;
    if (r !== null) {
      const slot = r.reserve();
      if (slot < 0) {
        this.c[this.ec + EC.uplink_tx_full] += 1;
        return 1;
      }
      copyFrame(r.bytes, r.i32, FrameRing.data(slot), buf, buf32, off, len);
      r.commit(slot, len, segment);
    }
    this.c[this.ec + EC.uplink_tx_frames] += 1;
    this.c[this.ec + EC.uplink_tx_bytes] += len;
    return 1;
  }

  /**
   * The echo uplink, inside the engine: the frame leaves by the uplink and comes back at once with
   * destination and source swapped, as from a host that answers everything. Counted both ways.
   */
  private reflectBack(segment: number, buf: Uint8Array, buf32: Int32Array, off: number, len: number): number {
    const e = this.echo8;
    copyFrame(e, this.echo32, ECHO_AT, buf, buf32, off, len);
    for (let i = ECHO_AT; i < ECHO_AT + 6; i++) {
      const t = e[i]!;
      e[i] = e[i + 6]!;
      e[i + 6] = t;
    }
    const c = this.c;
    c[this.ec + EC.uplink_tx_frames] += 1;
    c[this.ec + EC.uplink_tx_bytes] += len;
    c[this.ec + EC.uplink_rx_frames] += 1;
    c[this.ec + EC.uplink_rx_bytes] += len;
    this.fromUplinkFrame(segment, e, this.echo32, ECHO_AT, len); // never goes back to the uplink
    return 1;
  }

  /** Drain up to `batch` frames from each incoming ring. */
  pollRings(): number {
    const batch = this.eng.cfg.batch;
    let work = 0;
    const c = this.c;
    const ec = this.ec;
    for (let i = 0; i < this.fromUplink.length; i++) {
      const r = this.fromUplink[i]!;
      let n = 0;
      for (let s = r.peek(); s >= 0 && n < batch; s = r.peek()) {
        const len = FrameRing.len(r, s);
        if (len < MIN_FRAME) c[ec + EC.uplink_rx_runt] += 1;
        else if (len > this.maxFrame || len > r.maxFrame) c[ec + EC.uplink_rx_oversize] += 1;
        else {
          c[ec + EC.uplink_rx_frames] += 1;
          c[ec + EC.uplink_rx_bytes] += len;
          this.fromUplinkFrame(FrameRing.meta(r, s) & MAX_SEGMENT, r.bytes, r.i32, FrameRing.data(s), len);
        }
        r.advance();
        n++;
      }
      if (n !== 0) r.release();
      work += n;
    }
    for (let i = 0; i < this.fwdIn.length; i++) {
      const r = this.fwdIn[i]!;
      let n = 0;
      for (let s = r.peek(); s >= 0 && n < batch; s = r.peek()) {
        c[ec + EC.fwd_in_frames] += 1;
        this.fromEngineFrame(FrameRing.meta(r, s), r.bytes, r.i32, FrameRing.data(s), Math.min(FrameRing.len(r, s), r.maxFrame));
        r.advance();
        n++;
      }
      if (n !== 0) r.release();
      work += n;
    }
    return work;
  }

  /** Publish outgoing rings once per iteration and wake their consumers if they sleep. */
  publishRings(): void {
    const out = this.fwdOut;
    for (let e = 0; e < out.length; e++) {
      const r = out[e];
      if (r != null && r.publish()) wake(this.fwdOutWake[e]!);
    }
    if (this.toUplink !== null && this.toUplink.publish() && this.toUplinkWake !== null) wake(this.toUplinkWake);
  }

  /**
   * Free slots toward the uplink (Infinity for the null and echo uplinks, which never fill). The
   * engine takes guest frames only while a whole batch fits: a full uplink holds frames in the
   * guests' transmit queues (backpressure, as a NIC stops fetching descriptors while the wire is
   * busy) instead of taking them only to drop them.
   */
  uplinkRoom(): number {
    const r = this.toUplink;
    return r === null || this.reflect ? Infinity : r.room();
  }

  ringsPending(): boolean {
    for (let i = 0; i < this.fromUplink.length; i++) if (this.fromUplink[i]!.depth() !== 0) return true;
    for (let i = 0; i < this.fwdIn.length; i++) if (this.fwdIn[i]!.depth() !== 0) return true;
    return false;
  }
}
