/**
 * Driver side of a split virtqueue (virtio 1.2, 2.7), as a guest's driver writes it. Used by the
 * isolate guest library and by tests that play a (well-behaved or hostile) driver.
 */
import { vringNeedEvent } from './constants.js';
import type { QueueLayout } from '../layout/vif.js';

export class DriverQueue {
  readonly size: number;
  private readonly mask: number;
  readonly desc32: Uint32Array;
  readonly avail16: Uint16Array;
  readonly used16: Uint16Array;
  readonly used32: Uint32Array;
  readonly eventIdx: boolean;
  /** Driver's shadow of avail idx (free-running u16). */
  availIdx = 0;
  /** Avail idx at the last kick decision. */
  kickedIdx = 0;
  /** Next used entry to read. */
  lastUsed = 0;
  // Last used element read by nextUsed()
  usedId = 0;
  usedLen = 0;

  constructor(sab: SharedArrayBuffer, q: QueueLayout, eventIdx: boolean) {
    this.size = q.size;
    this.mask = q.size - 1;
    this.eventIdx = eventIdx;
    this.desc32 = new Uint32Array(sab, q.desc, 4 * q.size);
    this.avail16 = new Uint16Array(sab, q.avail, 3 + q.size);
    this.used16 = new Uint16Array(sab, q.used, 3 + 4 * q.size);
    this.used32 = new Uint32Array(sab, q.used + 4, 2 * q.size);
  }

  setDesc(i: number, addr: number, len: number, flags: number, next: number): void {
    const w = i << 2;
    this.desc32[w] = addr >>> 0;
    this.desc32[w + 1] = Math.floor(addr / 0x100000000);
    this.desc32[w + 2] = len >>> 0;
    this.desc32[w + 3] = (flags & 0xffff) | ((next & 0xffff) << 16);
  }

  /** Put a chain head on the avail ring; visible to the device after publish(). */
  add(head: number): void {
    this.avail16[2 + (this.availIdx & this.mask)] = head;
    this.availIdx = (this.availIdx + 1) & 0xffff;
  }

  /** Publish avail idx; returns true if the device asked to be kicked (2.7.10 / 2.7.7). */
  publish(): boolean {
    const old = this.kickedIdx;
    const now = this.availIdx;
    if (old === now) return false;
    Atomics.store(this.avail16, 1, now);
    this.kickedIdx = now;
    if (this.eventIdx) return vringNeedEvent(Atomics.load(this.used16, 2 + 4 * this.size), now, old);
    return (Atomics.load(this.used16, 0) & 1) === 0;
  }

  /** Read the next used element into usedId/usedLen; false if none. */
  nextUsed(): boolean {
    if (Atomics.load(this.used16, 1) === this.lastUsed) return false;
    const w = (this.lastUsed & this.mask) << 1;
    this.usedId = this.used32[w]!;
    this.usedLen = this.used32[w + 1]!;
    this.lastUsed = (this.lastUsed + 1) & 0xffff;
    return true;
  }

  hasUsed(): boolean {
    return Atomics.load(this.used16, 1) !== this.lastUsed;
  }

  /** Ask for an interrupt at the next used entry, then re-check. Returns true if one is already there. */
  arm(): boolean {
    if (this.eventIdx) Atomics.store(this.avail16, 2 + this.size, this.lastUsed);
    else Atomics.store(this.avail16, 0, 0);
    return this.hasUsed();
  }

  /**
   * Ask for an interrupt once the used idx passes `idx` (virtio 1.2, 2.7.10: used_event), or at the
   * next used entry without EVENT_IDX. Returns true if the device is already past it.
   */
  armAt(idx: number): boolean {
    if (this.eventIdx) Atomics.store(this.avail16, 2 + this.size, idx & 0xffff);
    else Atomics.store(this.avail16, 0, 0);
    const seen = (Atomics.load(this.used16, 1) - this.lastUsed) & 0xffff;
    return seen > ((idx - this.lastUsed) & 0xffff);
  }

  /** Tell the device no interrupts are wanted (polling). With EVENT_IDX the stale used_event does it. */
  disarm(): void {
    if (!this.eventIdx) Atomics.store(this.avail16, 0, 1); // VIRTQ_AVAIL_F_NO_INTERRUPT
  }
}
