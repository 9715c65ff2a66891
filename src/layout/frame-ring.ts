/**
 * A single-producer single-consumer ring of frames in device-owned memory. It carries frames
 * between engines of one device, between an engine and an uplink, and across a `wire`. Guests never
 * see these rings.
 *
 * ```
 *  frame ring (SharedArrayBuffer)
 *  0x000 +-------------------------------------------------+
 *        | HEAD u32: frames published by the producer      |  own 64 B line, producer writes
 *  0x040 | TAIL u32: frames consumed by the consumer       |  own 64 B line, consumer writes
 *  0x080 | slot count u32 | slot bytes u32 (immutable)     |
 *  0x0C0 +-------------------------------------------------+ SLOTS_OFFSET
 *        | slot 0: len u32 | meta u32 | 12 B pad | data ...|  SLOT_HEADER = 20
 *        | slot 1: ...                                     |
 *        +-------------------------------------------------+
 * ```
 * Slots start on 64 B lines and data at +20, so a frame sits at 4 mod 8 like everywhere else in
 * svnic (device/copy.ts explains why).
 * HEAD and TAIL are free-running u32 counters (wrap at 2^32); the ring holds HEAD - TAIL frames.
 * `meta` is owned by the link that uses the ring (see device/forward.ts for engine-to-engine use).
 */

export const R = { HEAD: 0, TAIL: 16, SLOTS: 32, SLOT_BYTES: 33 } as const; // Uint32Array indices
export const SLOTS_OFFSET = 0xc0;
export const SLOT_HEADER = 20;

export function createFrameRing(slots: number, maxFrame: number): SharedArrayBuffer {
  if ((slots & (slots - 1)) !== 0 || slots < 2) throw new RangeError(`ring slots must be a power of two >= 2, got ${slots}`);
  const slotBytes = Math.ceil((SLOT_HEADER + maxFrame) / 64) * 64;
  const sab = new SharedArrayBuffer(SLOTS_OFFSET + slots * slotBytes);
  const u32 = new Uint32Array(sab);
  u32[R.SLOTS] = slots;
  u32[R.SLOT_BYTES] = slotBytes;
  return sab;
}

/**
 * One end's view of a frame ring. Producer: `reserve()` a slot, write `bytes` at `dataOffset(slot)`,
 * `commit(slot, len, meta)`, then `publish()` once per batch. Consumer: `peek()`, read, `advance()`
 * per frame, `release()` once per batch. Indices are cached locally so each side touches the other
 * side's line only when its cached view runs out.
 */
export class FrameRing {
  readonly sab: SharedArrayBuffer;
  readonly u32: Uint32Array;
  readonly bytes: Uint8Array;
  readonly i32: Int32Array;
  readonly slots: number;
  readonly slotBytes: number;
  readonly maxFrame: number;
  private readonly mask: number;
  /** Producer: next index to fill; consumer: next index to read. */
  private local = 0;
  /** Producer: cached TAIL; consumer: cached HEAD. */
  private peer = 0;

  constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.u32 = new Uint32Array(sab);
    this.bytes = new Uint8Array(sab);
    this.i32 = new Int32Array(sab);
    this.slots = this.u32[R.SLOTS]!;
    this.slotBytes = this.u32[R.SLOT_BYTES]!;
    this.maxFrame = this.slotBytes - SLOT_HEADER;
    this.mask = this.slots - 1;
  }

  /** Attach as producer: start from the published HEAD. */
  asProducer(): this {
    this.local = Atomics.load(this.u32, R.HEAD);
    this.peer = Atomics.load(this.u32, R.TAIL);
    return this;
  }

  /** Attach as consumer: start from the published TAIL. */
  asConsumer(): this {
    this.local = Atomics.load(this.u32, R.TAIL);
    this.peer = Atomics.load(this.u32, R.HEAD);
    return this;
  }

  /** Producer: a free slot's byte offset, or -1 when the ring is full. */
  reserve(): number {
    if (((this.local - this.peer) >>> 0) >= this.slots) {
      this.peer = Atomics.load(this.u32, R.TAIL);
      if (((this.local - this.peer) >>> 0) >= this.slots) return -1;
    }
    return SLOTS_OFFSET + (this.local & this.mask) * this.slotBytes;
  }

  /** Producer: free slots right now (reads the consumer's TAIL). */
  room(): number {
    this.peer = Atomics.load(this.u32, R.TAIL);
    return this.slots - ((this.local - this.peer) >>> 0);
  }

  /** Producer: finish the slot returned by reserve(); visible to the consumer after publish(). */
  commit(slotOffset: number, len: number, meta: number): void {
    const w = slotOffset >>> 2;
    this.u32[w] = len;
    this.u32[w + 1] = meta >>> 0;
    this.local = (this.local + 1) >>> 0;
  }

  /** Producer: make committed frames visible. Returns true if anything was new. */
  publish(): boolean {
    if (this.u32[R.HEAD] === this.local) return false;
    Atomics.store(this.u32, R.HEAD, this.local);
    return true;
  }

  /** Consumer: byte offset of the next frame's slot, or -1 when empty. */
  peek(): number {
    if (this.local === this.peer) {
      this.peer = Atomics.load(this.u32, R.HEAD);
      if (this.local === this.peer) return -1;
    }
    return SLOTS_OFFSET + (this.local & this.mask) * this.slotBytes;
  }

  /** Consumer: move past the slot returned by peek(). */
  advance(): void {
    this.local = (this.local + 1) >>> 0;
  }

  /** Consumer: give consumed slots back to the producer. */
  release(): void {
    if (this.u32[R.TAIL] !== this.local) Atomics.store(this.u32, R.TAIL, this.local);
  }

  /** Frames waiting for the consumer, as seen from the shared indices. */
  depth(): number {
    return (Atomics.load(this.u32, R.HEAD) - Atomics.load(this.u32, R.TAIL)) >>> 0;
  }

  static len(ring: FrameRing, slotOffset: number): number {
    return ring.u32[slotOffset >>> 2]!;
  }
  static meta(ring: FrameRing, slotOffset: number): number {
    return ring.u32[(slotOffset >>> 2) + 1]!;
  }
  static data(slotOffset: number): number {
    return slotOffset + SLOT_HEADER;
  }
}
