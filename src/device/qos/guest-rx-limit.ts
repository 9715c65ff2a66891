/**
 * Guest-RX limits of one engine's VIFs: a token bucket per VIF and, for a VIF over its limit, a
 * bounded hold queue (hold-queue.ts) whose frames are placed as tokens come. A frame that finds
 * the queue full is dropped and counted (rx_qos_overflow); frames still queued when the VIF goes
 * away are counted as rx_qos_flushed. Holding the source instead (the uplink ring, another
 * engine's ring, another VIF) would block every other VIF behind the same source.
 *
 * `now` is the engine's clock (ms), set by the owner before each use; nothing here allocates
 * except configure() (control path).
 */
import { VC } from '../../layout/counters.js';
import { maxFrameBytes } from '../../layout/vif.js';
import type { Engine } from '../engine.js';
import type { EngineVif } from '../engine-vif.js';
import { TokenBucket } from './token-bucket.js';
import { HoldQueue } from './hold-queue.js';

/** Frames a guest-RX hold queue keeps per VIF. */
export const RX_HOLD_FRAMES = 128;

export class GuestRxLimit {
  readonly bucket: TokenBucket[];
  /** Read by Engine.deliver for every frame: 1 = this VIF has a guest-RX limit. */
  readonly limited: Uint8Array;
  private readonly hold: (HoldQueue | null)[];
  private readonly pending: Int32Array;
  private pendingN = 0;
  private readonly eng: Engine;
  now = 0;
  /** The VIF on this engine whose frames are being switched now (-1: none, e.g. from a ring). */
  sender = -1;
  /** Set when a frame of `sender` had to queue: ms until its receiver's queue is paid for. */
  blockedMs = 0;

  constructor(eng: Engine) {
    const n = eng.cfg.maxVifs;
    this.eng = eng;
    this.bucket = Array.from({ length: n }, () => new TokenBucket());
    this.limited = new Uint8Array(n);
    this.hold = new Array(n).fill(null);
    this.pending = new Int32Array(n);
  }

  /** Set or clear VIF s's limit (rates 0 = none). Lifting a limit places what was queued. */
  configure(s: number, bps: number, burstBytes: number, pps: number, burstFrames: number, now: number): void {
    this.now = now;
    const b = this.bucket[s]!;
    b.set(bps, burstBytes, pps, burstFrames, now);
    const on = b.limited;
    if (on && this.hold[s] === null) this.hold[s] = new HoldQueue(RX_HOLD_FRAMES, maxFrameBytes(this.eng.vifs[s]!.mtu));
    if (!on && this.hold[s] !== null) this.drain(s, true);
    this.limited[s] = on ? 1 : 0;
  }

  /** QoS is switched off: every queued frame is placed now. */
  releaseAll(): void {
    while (this.pendingN !== 0) this.drain(this.pending[0]!, true);
  }

  /** The VIF left the engine: queued frames count as rx_qos_flushed. */
  forget(s: number): void {
    const q = this.hold[s];
    if (q !== null) {
      this.eng.c[this.eng.vifs[s]!.counterBase + VC.rx_qos_flushed] += q.length;
      while (q.length !== 0) q.pop();
    }
    this.unpend(s);
    this.hold[s] = null;
    this.limited[s] = 0;
  }

  private unpend(s: number): void {
    for (let i = 0; i < this.pendingN; i++) {
      if (this.pending[i] === s) {
        this.pending[i] = this.pending[--this.pendingN]!;
        return;
      }
    }
  }

  /**
   * A frame for VIF `v`, which has a limit. Returns true if it may be placed now (its tokens are
   * taken); otherwise it was queued, or dropped and counted.
   */
  admit(v: EngineVif, buf: Uint8Array, buf32: Int32Array, off: number, len: number): boolean {
    const s = v.slot;
    const rb = this.bucket[s]!;
    const q = this.hold[s]!;
    rb.refill(this.now, q.length !== 0);
    if (q.length === 0 && rb.conforms()) {
      rb.charge(len, 1);
      return true;
    }
    const c = this.eng.c;
    const queued = q.push(buf, buf32, off, len);
    if (this.sender >= 0) {
      const w = rb.waitFor(q.bytesQueued, q.length);
      if (w > this.blockedMs) this.blockedMs = w;
    }
    if (!queued) {
      c[v.counterBase + VC.rx_qos_overflow] += 1;
      return false;
    }
    c[v.counterBase + VC.qos_rx_queued] += 1;
    if (q.length === 1) this.pending[this.pendingN++] = s;
    return false;
  }

  /** Place queued frames whose tokens have come. Returns frames placed. */
  drainPending(): number {
    let n = 0;
    for (let i = 0; i < this.pendingN; ) {
      const s = this.pending[i]!;
      n += this.drain(s, false);
      if (this.hold[s]!.length === 0) this.pending[i] = this.pending[--this.pendingN]!;
      else i++;
    }
    return n;
  }

  private drain(s: number, all: boolean): number {
    const q = this.hold[s];
    const v = this.eng.vifs[s];
    if (q === null || v === undefined) return 0;
    const rb = this.bucket[s]!;
    rb.refill(this.now, true);
    let n = 0;
    while (q.length !== 0 && (all || rb.conforms())) {
      const len = q.frontLength();
      rb.charge(len, 1);
      this.eng.placeToGuest(v, q.bytes, q.i32, q.frontOffset(), len);
      q.pop();
      n++;
    }
    if (all) this.unpend(s);
    return n;
  }

  get queued(): boolean {
    return this.pendingN !== 0;
  }

  /** Could a queued frame be placed now? */
  ready(now: number): boolean {
    for (let i = 0; i < this.pendingN; i++) {
      const rb = this.bucket[this.pending[i]!]!;
      rb.refill(now, true);
      if (rb.conforms()) return true;
    }
    return false;
  }

  /** Milliseconds until the next queued frame's tokens come (Infinity: nothing queued). */
  nextDeadline(now: number): number {
    let t = Infinity;
    for (let i = 0; i < this.pendingN; i++) {
      const rb = this.bucket[this.pending[i]!]!;
      const d = rb.last + rb.waitMs() - now;
      if (d < t) t = d;
    }
    return t;
  }
}
