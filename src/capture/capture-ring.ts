/**
 * Capture taps on the data path: a thread that handles frames (a TAP uplink worker, an engine)
 * copies them into a capture ring only while capture is on; a drain on the main thread writes the
 * ring to a pcap file. When capture is off the cost is one load of the ENABLED word per frame.
 *
 * ```
 *  flag SharedArrayBuffer (64 B)           capture ring = a frame ring (layout/frame-ring.ts)
 *  0x00 ENABLED i32 (control plane writes)   slot: len u32 | meta u32 (direction) | f64 time (ms,
 *  0x04 DROPPED i32 (producer: ring full)          wall clock) at +8 | pad | frame at +20
 * ```
 * One ring per producing thread keeps every ring single-producer single-consumer.
 */
import { FrameRing, createFrameRing } from '../layout/frame-ring.js';
import type { PcapWriter } from './pcap.js';
import { copyBytes } from '../device/copy.js';

export const CAP_ENABLED = 0;
export const CAP_DROPPED = 1;
export const DIR_IN = 0; // into the device (from the network / from a guest)
export const DIR_OUT = 1; // out of the device

export interface CaptureRingSpec {
  ring: SharedArrayBuffer;
  flag: SharedArrayBuffer;
}

export function createCaptureRing(slots = 1024, maxFrame = 14 + 4 + 9000): CaptureRingSpec {
  return { ring: createFrameRing(slots, maxFrame), flag: new SharedArrayBuffer(64) };
}

/** Producer end (in the data-path thread). */
export class CaptureTap {
  readonly flag: Int32Array;
  private readonly r: FrameRing;
  private readonly f64: Float64Array;

  constructor(spec: CaptureRingSpec) {
    this.flag = new Int32Array(spec.flag);
    this.r = new FrameRing(spec.ring).asProducer();
    this.f64 = new Float64Array(spec.ring);
  }

  /** Copy src[off..off+len) if capture is on. Never blocks; a full ring counts DROPPED. */
  tap(src: Uint8Array, off: number, len: number, dir: number): void {
    if (this.flag[CAP_ENABLED] === 0) return;
    const r = this.r;
    const slot = r.reserve();
    if (slot < 0) {
      Atomics.add(this.flag, CAP_DROPPED, 1);
      return;
    }
    const n = Math.min(len, r.maxFrame);
    copyBytes(r.bytes, FrameRing.data(slot), src, off, n);
    this.f64[(slot + 8) >>> 3] = performance.timeOrigin + performance.now();
    r.commit(slot, n, dir);
    r.publish();
  }
}

/** How often a draining capture writes its buffered records to the file (ms). */
const FLUSH_MS = 200;

/** Consumer end (main thread): move frames from rings into a pcap writer. */
export class CaptureDrain {
  private readonly rings: { r: FrameRing; f64: Float64Array; flag: Int32Array }[];
  private timer: ReturnType<typeof setInterval> | null = null;
  private writer: PcapWriter | null = null;

  /**
   * `route`: which writer gets a frame, by its meta (default: the one given to start()). Used by
   * VIF capture, where meta carries the VIF slot and each VIF has its own file.
   */
  constructor(specs: CaptureRingSpec[], private readonly route: ((meta: number) => PcapWriter | null) | null = null) {
    this.rings = specs.map((s) => ({ r: new FrameRing(s.ring).asConsumer(), f64: new Float64Array(s.ring), flag: new Int32Array(s.flag) }));
  }

  private on = false;

  get active(): boolean {
    return this.on;
  }

  /**
   * Called every FLUSH_MS while draining, so a file stays readable while a long-running process
   * (svnicd) captures: the writer given to start() is flushed, and with `route` this hook flushes
   * the routed writers (vif-capture.ts sets it).
   */
  onFlush: (() => void) | null = null;

  start(w: PcapWriter | null, everyMs = 20): void {
    this.stop();
    this.writer = w;
    this.on = true;
    for (const x of this.rings) Atomics.store(x.flag, CAP_ENABLED, 1);
    let sinceFlush = 0;
    this.timer = setInterval(() => {
      if (this.drain() > 0 || sinceFlush > 0) sinceFlush += everyMs;
      if (sinceFlush >= FLUSH_MS) {
        sinceFlush = 0;
        this.writer?.flush();
        this.onFlush?.();
      }
    }, everyMs);
    this.timer.unref();
  }

  drain(): number {
    let n = 0;
    for (const { r, f64 } of this.rings) {
      for (let s = r.peek(); s >= 0; s = r.peek()) {
        const w = this.route !== null ? this.route(FrameRing.meta(r, s)) : this.writer;
        w?.write(r.bytes, FrameRing.data(s), FrameRing.len(r, s), f64[(s + 8) >>> 3]!);
        r.advance();
        n++;
      }
      r.release();
    }
    return n;
  }

  /** Frames the producers could not capture because the ring was full. */
  dropped(): number {
    return this.rings.reduce((s, x) => s + Atomics.load(x.flag, CAP_DROPPED), 0);
  }

  /** Turn capture off, write what is left and close the file. */
  stop(): void {
    for (const x of this.rings) Atomics.store(x.flag, CAP_ENABLED, 0);
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.on) this.drain();
    this.on = false;
    this.writer?.close();
    this.writer = null;
  }
}
