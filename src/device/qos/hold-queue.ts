/**
 * A bounded FIFO of frames in engine-private memory (not shared, never granted to a guest): where
 * frames for a VIF over its guest-RX limit wait until its token bucket lets them through. One
 * thread both fills and drains it. Frames sit at 12 mod 64 (4 mod 8), like everywhere in svnic
 * (device/copy.ts). Allocated when the limit is configured, never on the data path.
 */
import { copyFrame } from '../copy.js';

const DATA_AT = 12;

export class HoldQueue {
  readonly bytes: Uint8Array;
  readonly i32: Int32Array;
  private readonly lens: Int32Array;
  private readonly slotBytes: number;
  private readonly mask: number;
  private head = 0; // next to write
  private tail = 0; // next to read
  /** Sum of the lengths of the queued frames. */
  bytesQueued = 0;

  constructor(slots: number, maxFrame: number) {
    if ((slots & (slots - 1)) !== 0) throw new RangeError('hold queue slots must be a power of two');
    this.slotBytes = Math.ceil((DATA_AT + maxFrame) / 64) * 64;
    this.bytes = new Uint8Array(slots * this.slotBytes);
    this.i32 = new Int32Array(this.bytes.buffer);
    this.lens = new Int32Array(slots);
    this.mask = slots - 1;
  }

  get length(): number {
    return this.head - this.tail;
  }

  /** Copy a frame in; false when the queue is full. */
  push(src: Uint8Array, src32: Int32Array, off: number, len: number): boolean {
    if (this.head - this.tail > this.mask || len + DATA_AT > this.slotBytes) return false;
    const s = this.head & this.mask;
    copyFrame(this.bytes, this.i32, s * this.slotBytes + DATA_AT, src, src32, off, len);
    this.lens[s] = len;
    this.bytesQueued += len;
    this.head++;
    return true;
  }

  /** Byte offset of the oldest frame (valid until pop()). */
  frontOffset(): number {
    return (this.tail & this.mask) * this.slotBytes + DATA_AT;
  }

  frontLength(): number {
    return this.lens[this.tail & this.mask]!;
  }

  pop(): void {
    this.bytesQueued -= this.lens[this.tail & this.mask]!;
    this.tail++;
  }
}
