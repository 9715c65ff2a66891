/**
 * The uplink thread's end of the engine rings (uplink/rings.ts): consume frames the engines send
 * to the uplink, produce frames into the device, and sleep on the uplink's wake page when there is
 * nothing to do (the protocol of layout/doorbell.ts: announce SLEEPING, re-check, wait on WAKE).
 * Used inside uplink workers; allocation-free per frame.
 */
import { FrameRing } from '../layout/frame-ring.js';
import { W, wake } from '../layout/doorbell.js';
import type { UplinkRings } from './rings.js';

export class UplinkPort {
  readonly toUplink: FrameRing[];
  readonly fromUplink: FrameRing[];
  /** Buffer views over the ring memory, for Buffer.copy without a view per frame. */
  readonly toUplinkBuf: Buffer[];
  readonly fromUplinkBuf: Buffer[];
  private readonly engineWake: Int32Array[];
  readonly page: Int32Array;
  private readonly dirty: boolean[];

  constructor(r: UplinkRings) {
    this.page = new Int32Array(r.wake);
    this.toUplink = r.toUplink.map((s) => new FrameRing(s).asConsumer());
    this.toUplinkBuf = r.toUplink.map((s) => Buffer.from(s));
    this.fromUplink = r.fromUplink.map((e) => new FrameRing(e.ring).asProducer());
    this.fromUplinkBuf = r.fromUplink.map((e) => Buffer.from(e.ring));
    this.engineWake = r.fromUplink.map((e) => new Int32Array(e.wake));
    this.dirty = r.fromUplink.map(() => false);
  }

  /** Which engine's ring a frame from the network goes to: by destination MAC, broadcast to 0. */
  pickEngine(b: Uint8Array, off: number): number {
    const n = this.fromUplink.length;
    if (n === 1 || (b[off]! & 1) !== 0) return 0;
    return (b[off + 5]! ^ b[off + 4]!) % n;
  }

  /**
   * Put src[off..off+len) into engine e's ring with `segment` as meta. False when the ring is full
   * (the caller counts the drop). Visible to the engine after publish().
   */
  produce(e: number, src: Buffer, off: number, len: number, segment: number): boolean {
    const r = this.fromUplink[e]!;
    const slot = r.reserve();
    if (slot < 0) return false;
    src.copy(this.fromUplinkBuf[e]!, FrameRing.data(slot), off, off + len);
    r.commit(slot, len, segment);
    this.dirty[e] = true;
    return true;
  }

  /** Publish produced frames and wake the engines that sleep. */
  publish(): void {
    for (let e = 0; e < this.fromUplink.length; e++) {
      if (!this.dirty[e]) continue;
      this.dirty[e] = false;
      if (this.fromUplink[e]!.publish()) wake(this.engineWake[e]!);
    }
  }

  /** Frames waiting in any toUplink ring. */
  pending(): boolean {
    for (let i = 0; i < this.toUplink.length; i++) if (this.toUplink[i]!.depth() !== 0) return true;
    return false;
  }

  /**
   * Sleep until an engine publishes to the uplink or `timeoutMs` passes, without blocking the event
   * loop (Atomics.waitAsync). The WAKE value is read before SLEEPING is announced and the rings are
   * re-checked after, so a producer either sees SLEEPING = 1 or the re-check sees its frame.
   */
  async sleep(timeoutMs: number): Promise<void> {
    const seen = Atomics.load(this.page, W.WAKE);
    Atomics.store(this.page, W.SLEEPING, 1);
    if (!this.pending()) {
      const r = Atomics.waitAsync(this.page, W.WAKE, seen, timeoutMs);
      if (r.async) await r.value;
    }
    Atomics.store(this.page, W.SLEEPING, 0);
  }

  /** The same, blocking the thread (for uplink threads without an event loop to serve). */
  sleepSync(timeoutMs: number): void {
    const seen = Atomics.load(this.page, W.WAKE);
    Atomics.store(this.page, W.SLEEPING, 1);
    if (!this.pending()) Atomics.wait(this.page, W.WAKE, seen, timeoutMs);
    Atomics.store(this.page, W.SLEEPING, 0);
  }
}
