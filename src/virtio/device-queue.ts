/**
 * Device side of a split virtqueue (virtio 1.2, 2.7). Indices and entries come from guest memory
 * and are checked before use; every field is read once into a local so that a guest rewriting the
 * ring concurrently cannot change a value between its check and its use.
 */
import type { GuestMemory } from './guest-memory.js';
import { vringNeedEvent, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT } from './constants.js';

export interface QueueAddresses {
  desc: number;
  avail: number;
  used: number;
  size: number;
}

/** Why a queue stopped: the protocol violations that put a VIF into NEEDS_RESET. */
export const enum Violation {
  NONE = 0,
  AVAIL_JUMP = 1, // avail idx moved more than queue size past last_avail (2.7.6)
  BAD_DESC_INDEX = 2, // head or next >= queue size (2.7.5)
  DESC_LOOP = 3, // chain longer than queue size (2.7.5.1: a loop)
  INDIRECT = 4, // VIRTQ_DESC_F_INDIRECT without VIRTIO_F_INDIRECT_DESC (2.7.5.3.1)
}

export const EMPTY = -1;
export const VIOLATED = -2;
/** Results of DeviceQueue.nextInChain(). */
export const CHAIN_END = 0;
export const CHAIN_MORE = 1;

export class DeviceQueue {
  readonly size: number;
  private readonly mask: number;
  private readonly desc32: Uint32Array;
  private readonly avail16: Uint16Array;
  private readonly used16: Uint16Array;
  private readonly used32: Uint32Array;
  readonly eventIdx: boolean;
  /** Next avail ring entry the device will read (free-running u16). */
  lastAvail = 0;
  /** Used idx as written by the device (free-running u16), published by publishUsed(). */
  usedIdx = 0;
  /** Used idx at the last interrupt decision (for EVENT_IDX, 2.7.10). */
  signalledIdx = 0;
  violation: Violation = Violation.NONE;

  // Last descriptor read by readDesc(): fields copied out of guest memory.
  dAddrLo = 0;
  dAddrHi = 0;
  dLen = 0;
  dFlags = 0;
  dNext = 0;

  /**
   * Throws RangeError if the rings are not inside guest memory: that is a set-up error the caller
   * reports (vhost-user SET_VRING_ADDR, or an isolate VIF layout mismatch), never a data path one.
   */
  constructor(mem: GuestMemory, q: QueueAddresses, eventIdx: boolean) {
    if (q.size < 1 || q.size > 32768 || (q.size & (q.size - 1)) !== 0) throw new RangeError(`queue size ${q.size} is not a power of two in 1..32768`);
    this.size = q.size;
    this.mask = q.size - 1;
    this.eventIdx = eventIdx;
    const d = mem.region(q.desc, 16 * q.size);
    const a = mem.region(q.avail, 6 + 2 * q.size);
    const u = mem.region(q.used, 6 + 8 * q.size);
    if (!d || !a || !u) throw new RangeError('virtqueue rings lie outside guest memory');
    if (d.byteOffset % 16 || a.byteOffset % 2 || u.byteOffset % 4) throw new RangeError('virtqueue rings are misaligned (2.7: desc 16, avail 2, used 4)');
    this.desc32 = new Uint32Array(d.buffer, d.byteOffset, 4 * q.size);
    this.avail16 = new Uint16Array(a.buffer, a.byteOffset, 3 + q.size);
    this.used16 = new Uint16Array(u.buffer, u.byteOffset, 3 + 4 * q.size);
    this.used32 = new Uint32Array(u.buffer, u.byteOffset + 4, 2 * q.size);
  }

  /** Resume from ring indices (vhost-user SET_VRING_BASE); isolates start at 0. */
  setBase(lastAvail: number, usedIdx: number): void {
    this.lastAvail = lastAvail & 0xffff;
    this.usedIdx = usedIdx & 0xffff;
    this.signalledIdx = this.usedIdx;
  }

  /**
   * Resume a ring another run of the device (or another back-end) served: take chains from
   * `lastAvail` (vhost-user SET_VRING_BASE) and continue the used idx the ring already holds.
   */
  resume(lastAvail: number): void {
    this.lastAvail = lastAvail & 0xffff;
    this.usedIdx = Atomics.load(this.used16, 1);
    this.signalledIdx = this.usedIdx;
  }

  /** Chains the driver has made available and the device has not taken; -1 on a jump (violation). */
  pending(): number {
    const n = (Atomics.load(this.avail16, 1) - this.lastAvail) & 0xffff;
    return n > this.size ? -1 : n;
  }

  /**
   * Take the next available chain head. Returns the head descriptor index, EMPTY, or VIOLATED
   * (with `violation` set). On success the first descriptor is already loaded (d* fields).
   */
  nextHead(): number {
    if (this.violation !== Violation.NONE) return VIOLATED;
    const n = this.pending();
    if (n === 0) return EMPTY;
    if (n < 0) return this.fail(Violation.AVAIL_JUMP);
    const head = this.avail16[2 + (this.lastAvail & this.mask)]!;
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    if (head >= this.size) return this.fail(Violation.BAD_DESC_INDEX);
    this.readDesc(head);
    return head;
  }

  /** Load descriptor `i` (caller checked i < size) into the d* fields. */
  readDesc(i: number): void {
    const w = i << 2;
    this.dAddrLo = this.desc32[w]!;
    this.dAddrHi = this.desc32[w + 1]!;
    this.dLen = this.desc32[w + 2]!;
    const fn = this.desc32[w + 3]!;
    this.dFlags = fn & 0xffff;
    this.dNext = fn >>> 16;
  }

  /**
   * Check the loaded descriptor, the `n`th of its chain (from 1): a chain longer than the queue is
   * a loop (2.7.5.1), and INDIRECT without the feature is a violation (2.7.5.3.1). False = violated.
   */
  descOk(n: number): boolean {
    if (n > this.size) this.fail(Violation.DESC_LOOP);
    else if ((this.dFlags & VIRTQ_DESC_F_INDIRECT) !== 0) this.fail(Violation.INDIRECT);
    else return true;
    return false;
  }

  /** Load the next descriptor of the chain: CHAIN_MORE, CHAIN_END, or VIOLATED (next out of range). */
  nextInChain(): number {
    if ((this.dFlags & VIRTQ_DESC_F_NEXT) === 0) return CHAIN_END;
    const next = this.dNext;
    if (next >= this.size) return this.fail(Violation.BAD_DESC_INDEX);
    this.readDesc(next);
    return CHAIN_MORE;
  }

  /** Un-take the last `n` chains taken by nextHead() (none of them was added to the used ring). */
  giveBack(n: number): void {
    this.lastAvail = (this.lastAvail - n) & 0xffff;
  }

  fail(v: Violation): number {
    this.violation = v;
    return VIOLATED;
  }

  /** Record a used element (2.7.8). Visible to the driver after publishUsed(). */
  addUsed(head: number, len: number): void {
    const w = (this.usedIdx & this.mask) << 1;
    this.used32[w] = head;
    this.used32[w + 1] = len;
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
  }

  /** Publish used entries with one store. Returns true if anything new was published. */
  publishUsed(): boolean {
    if (this.used16[1] === this.usedIdx) return false;
    Atomics.store(this.used16, 1, this.usedIdx);
    return true;
  }

  /** Does the driver want an interrupt for what was published since the last decision? (2.7.10) */
  wantsInterrupt(): boolean {
    const old = this.signalledIdx;
    const now = this.usedIdx;
    if (old === now) return false;
    this.signalledIdx = now;
    if (this.eventIdx) return vringNeedEvent(Atomics.load(this.avail16, 2 + this.size), now, old);
    return (Atomics.load(this.avail16, 0) & 1) === 0; // VIRTQ_AVAIL_F_NO_INTERRUPT
  }

  /**
   * Ask the driver to kick when it adds chains, then re-check. Returns true if chains are already
   * pending (the caller keeps polling instead of sleeping). 2.7.10 (avail_event), 2.7.7 (flags).
   */
  enableKicks(): boolean {
    if (this.eventIdx) Atomics.store(this.used16, 2 + 4 * this.size, this.lastAvail);
    else Atomics.store(this.used16, 0, 0);
    return this.pending() !== 0;
  }

  /** While polling, tell the driver kicks are not needed (only meaningful without EVENT_IDX). */
  disableKicks(): void {
    if (!this.eventIdx) Atomics.store(this.used16, 0, 1); // VIRTQ_USED_F_NO_NOTIFY
  }

  /** The avail idx as the driver published it, for accounting at unplug. */
  availIdx(): number {
    return Atomics.load(this.avail16, 1);
  }
}
