/**
 * The isolate guest's virtio-net driver: what a guest program uses to send and receive frames on
 * one VIF. It touches only the VIF's memory (and the engine's doorbell page, like a device register
 * page). It follows the device initialization sequence of virtio 1.2, 3.1.1.
 *
 * Batch API (no allocation): `sendMany()`, or `reserveTx()` / `commitTx()` / `flush()` for
 * zero-copy sends; `receive(max)` then read frames in place with `frameOffset(i)` /
 * `frameLength(i)` over `bytes` (or `frame(i)` for a view), valid until `release()`.
 * Waiting: `waitSync()` (blocks the thread, for polling guests) and `wait()` (async).
 */
import {
  H, i32, vifLayout, VIF_MAGIC, VIF_LAYOUT_VERSION, QUEUE_GUEST_RX, QUEUE_GUEST_TX, type VifLayout,
} from '../layout/vif.js';
import { ring } from '../layout/doorbell.js';
import {
  F_EVENT_IDX, F_MAC, F_MTU, F_STATUS, F_VERSION_1, NET_HDR_BYTES, NET_S_LINK_UP, STATUS_ACKNOWLEDGE,
  STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FEATURES_OK, STATUS_NEEDS_RESET, VIRTQ_DESC_F_WRITE,
  features, type Features,
} from '../virtio/constants.js';
import { DriverQueue } from '../virtio/driver-queue.js';
import { formatMac } from '../device/mac-table.js';

/** What the hypervisor hands a guest for one VIF. */
export interface VifGrant {
  vifId: string;
  vif: SharedArrayBuffer;
  doorbell: SharedArrayBuffer;
}

export class DriverError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'DriverError';
  }
}

/** Features this driver understands (virtio 1.2, 5.1.3). */
const DRIVER_FEATURES = features(F_VERSION_1, F_MAC, F_MTU, F_STATUS, F_EVENT_IDX);

export class VirtioNetDriver {
  readonly id: string;
  readonly sab: SharedArrayBuffer;
  /** The whole VIF memory; received frames are read in place from here. */
  readonly bytes: Uint8Array;
  private readonly words: Int32Array;
  private readonly header: Int32Array;
  private readonly doorbell: Int32Array;
  private readonly bit: number;
  readonly layout: VifLayout;
  private rxq!: DriverQueue;
  private txq!: DriverQueue;
  private txFree!: Int32Array;
  private txFreeTop = 0;
  private rxIds!: Int32Array;
  private rxLens!: Int32Array;
  private rxCount = 0;
  private irqSeen = 0;
  negotiated: Features = { lo: 0, hi: 0 };
  unplugged = false;
  /** A reset was written and the device has not acknowledged it yet. */
  resetting = false;
  /** Guest-side counts: frames handed to the device, frames received, sends refused (ring full). */
  readonly stats = { sent: 0, received: 0, txRingFull: 0, oversize: 0 };

  constructor(grant: VifGrant) {
    this.id = grant.vifId;
    this.sab = grant.vif;
    this.bytes = new Uint8Array(grant.vif);
    this.words = new Int32Array(grant.vif);
    this.header = new Int32Array(grant.vif, 0, 1024);
    this.doorbell = new Int32Array(grant.doorbell);
    if (this.header[i32(H.MAGIC)] !== VIF_MAGIC || this.header[i32(H.LAYOUT_VERSION)] !== VIF_LAYOUT_VERSION) {
      throw new DriverError('VIF_LAYOUT_MISMATCH', 'VIF memory has an unknown layout: the guest library and the device must be the same svnic version');
    }
    this.bit = this.header[i32(H.DOORBELL_BIT)]!;
    // Buffer size comes from the header's buffer area, not the MTU, which may change later.
    const q = this.header[i32(H.QUEUE_SIZE)]!;
    const rings = vifLayout(q, 68);
    this.layout = {
      ...rings,
      buffersOffset: this.header[i32(H.BUFFERS_OFFSET)]!,
      buffersSize: this.header[i32(H.BUFFERS_SIZE)]!,
      bufferBytes: Math.floor(this.header[i32(H.BUFFERS_SIZE)]! / (2 * q) / 64) * 64,
    };
    this.start();
  }

  get mac(): string {
    return formatMac(this.bytes, H.MAC);
  }
  get mtu(): number {
    return Atomics.load(this.header, i32(H.MTU));
  }
  get linkUp(): boolean {
    return (Atomics.load(this.header, i32(H.LINK_STATUS)) & NET_S_LINK_UP) !== 0;
  }
  get needsReset(): boolean {
    return (Atomics.load(this.header, i32(H.STATUS)) & STATUS_NEEDS_RESET) !== 0;
  }

  /**
   * virtio 1.2, 3.1.1 step 1: reset. The driver writes 0 and must not initialise again until the
   * device has seen the reset (4.1.4.3.2); the device reports that in its device-state word. Until
   * then `resetting` is true and the data-path calls do nothing; each of them retries the rest.
   */
  private start(): void {
    Atomics.store(this.header, i32(H.STATUS), 0);
    this.resetting = true;
    this.kick();
    this.finishReset();
  }

  /** Steps 2-8 of 3.1.1 once the device has seen the reset: negotiate, set up queues, DRIVER_OK. */
  private finishReset(): boolean {
    const h = this.header;
    if (Atomics.load(h, i32(H.DEVICE_STATE)) !== 0) return false;
    this.resetting = false;
    Atomics.store(h, i32(H.STATUS), STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    const dev = { lo: h[i32(H.DEVICE_FEATURES_LO)]! >>> 0, hi: h[i32(H.DEVICE_FEATURES_HI)]! >>> 0 };
    this.negotiated = { lo: (dev.lo & DRIVER_FEATURES.lo) >>> 0, hi: (dev.hi & DRIVER_FEATURES.hi) >>> 0 };
    h[i32(H.DRIVER_FEATURES_LO)] = this.negotiated.lo;
    h[i32(H.DRIVER_FEATURES_HI)] = this.negotiated.hi;
    Atomics.store(h, i32(H.STATUS), STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    const eventIdx = ((this.negotiated.lo >>> F_EVENT_IDX) & 1) === 1;
    const L = this.layout;
    new Uint8Array(this.sab, L.queues[0].desc, L.buffersOffset - L.queues[0].desc).fill(0);
    this.rxq = new DriverQueue(this.sab, L.queues[QUEUE_GUEST_RX], eventIdx);
    this.txq = new DriverQueue(this.sab, L.queues[QUEUE_GUEST_TX], eventIdx);
    const q = L.queueSize;
    this.rxIds = new Int32Array(q);
    this.rxLens = new Int32Array(q);
    this.rxCount = 0;
    for (let i = 0; i < q; i++) {
      this.rxq.setDesc(i, this.rxBuffer(i), L.bufferBytes, VIRTQ_DESC_F_WRITE, 0);
      this.rxq.add(i);
    }
    this.rxq.publish();
    this.txFree = new Int32Array(q);
    for (let i = 0; i < q; i++) this.txFree[i] = q - 1 - i;
    this.txFreeTop = q;
    this.irqSeen = Atomics.load(h, i32(H.IRQ));
    Atomics.store(h, i32(H.STATUS), STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    this.kick();
    return true;
  }

  /**
   * After NEEDS_RESET (or any time): reset the device and start again. Received views become
   * invalid; frames not yet taken by the device are discarded. Completes once the device has seen
   * the reset (`resetting` goes false on a later call).
   */
  reset(): void {
    this.start();
  }

  /** False while a reset waits for the device. */
  private ready(): boolean {
    return !this.resetting || this.finishReset();
  }

  private rxBuffer(i: number): number {
    return this.layout.buffersOffset + i * this.layout.bufferBytes;
  }
  private txBuffer(i: number): number {
    return this.layout.buffersOffset + (this.layout.queueSize + i) * this.layout.bufferBytes;
  }

  private kick(): void {
    if (!this.unplugged) ring(this.doorbell, this.bit);
  }

  /** Take back transmit buffers the device has finished with. */
  private reclaimTx(): void {
    const q = this.txq;
    const size = this.layout.queueSize;
    while (q.nextUsed()) {
      const id = q.usedId;
      if (id < size && this.txFreeTop < size) this.txFree[this.txFreeTop++] = id;
    }
  }

  // ---- transmit -----------------------------------------------------------------------------

  /**
   * Zero-copy send, step 1: a free transmit buffer, or -1 if the ring is full. Write the frame at
   * `txOffset(slot)` in `bytes` (at most `maxFrame` bytes), then commitTx(slot, len) and flush().
   */
  reserveTx(): number {
    if (!this.ready()) return -1;
    if (this.txFreeTop === 0) this.reclaimTx();
    if (this.txFreeTop === 0 || this.unplugged) {
      this.stats.txRingFull++;
      return -1;
    }
    return this.txFree[--this.txFreeTop]!;
  }

  txOffset(slot: number): number {
    return this.txBuffer(slot) + NET_HDR_BYTES;
  }

  get maxFrame(): number {
    return this.layout.bufferBytes - NET_HDR_BYTES;
  }

  commitTx(slot: number, len: number): void {
    const addr = this.txBuffer(slot);
    const w = addr >>> 2; // buffers are 64-byte aligned
    this.words[w] = 0; // virtio_net_hdr_v1, 12 bytes: no offloads (5.1.6.2)
    this.words[w + 1] = 0;
    this.words[w + 2] = 0;
    this.txq.setDesc(slot, addr, NET_HDR_BYTES + len, 0, 0);
    this.txq.add(slot);
    this.stats.sent++;
  }

  /** Publish committed sends and kick the device if it asked for kicks. */
  flush(): void {
    if (this.txq.publish()) this.kick();
  }

  /**
   * Copy and send frames[0..count); returns how many were queued. It stops at the first frame that
   * finds the ring full; frames larger than `maxFrame` are skipped (stats.oversize).
   */
  sendMany(frames: readonly Uint8Array[], count = frames.length): number {
    let n = 0;
    for (let i = 0; i < count; i++) {
      const f = frames[i]!;
      if (f.length > this.maxFrame) {
        this.stats.oversize++; // not queued, not counted as sent
        continue;
      }
      const slot = this.reserveTx();
      if (slot < 0) break;
      this.bytes.set(f, this.txOffset(slot));
      this.commitTx(slot, f.length);
      n++;
    }
    this.flush();
    return n;
  }

  send(frame: Uint8Array): boolean {
    return this.sendMany([frame], 1) === 1;
  }

  /**
   * Block this thread until at least `room` transmit buffers are free, an interrupt arrives for
   * another reason, or `timeoutMs` passes. It asks the device to interrupt when enough transmit
   * buffers have completed (the transmit queue's used_event, virtio 1.2, 2.7.10), so a sender
   * with a full ring sleeps instead of polling or waking on a timer.
   */
  waitTxSync(timeoutMs = Infinity, room = 1): void {
    if (!this.ready() || this.unplugged) return;
    const size = this.layout.queueSize;
    const want = Math.min(Math.max(room, 1), size);
    this.reclaimTx();
    if (this.txFreeTop >= want) return;
    if (this.txq.armAt(this.txq.lastUsed + (want - this.txFreeTop) - 1)) return;
    const now = Atomics.load(this.header, i32(H.IRQ));
    if (now !== this.irqSeen) {
      this.irqSeen = now;
      return;
    }
    Atomics.wait(this.header, i32(H.IRQ), this.irqSeen, timeoutMs);
    this.irqSeen = Atomics.load(this.header, i32(H.IRQ));
  }

  /** Transmit buffers queued but not yet completed by the device. */
  get txInFlight(): number {
    this.reclaimTx();
    return this.layout.queueSize - this.txFreeTop;
  }

  // ---- receive ------------------------------------------------------------------------------

  /** Take up to `max` received frames; they stay valid until release(). Returns how many. */
  receive(max = this.layout.queueSize): number {
    if (!this.ready()) return 0;
    const q = this.rxq;
    const size = this.layout.queueSize;
    let n = this.rxCount;
    while (n < max && q.nextUsed()) {
      const id = q.usedId;
      const len = q.usedLen;
      // Trust but verify: a device bug must not make the guest read outside its buffer.
      if (id >= size || len < NET_HDR_BYTES || len > this.layout.bufferBytes) continue;
      this.rxIds[n] = id;
      this.rxLens[n] = len - NET_HDR_BYTES;
      n++;
    }
    const got = n - this.rxCount;
    this.rxCount = n;
    this.stats.received += got;
    return n;
  }

  frameOffset(i: number): number {
    return this.rxBuffer(this.rxIds[i]!) + NET_HDR_BYTES;
  }
  frameLength(i: number): number {
    return this.rxLens[i]!;
  }
  /** A view of received frame i (allocates a view; use frameOffset/frameLength on hot paths). */
  frame(i: number): Uint8Array {
    const off = this.frameOffset(i);
    return this.bytes.subarray(off, off + this.rxLens[i]!);
  }

  /** Give all received buffers back to the device. */
  release(): void {
    if (this.resetting) {
      this.rxCount = 0; // the reset took the buffers back
      return;
    }
    const q = this.rxq;
    for (let i = 0; i < this.rxCount; i++) q.add(this.rxIds[i]!);
    this.rxCount = 0;
    if (q.publish()) this.kick();
  }

  // ---- waiting ------------------------------------------------------------------------------

  /** Ready to receive without waiting? */
  pollRx(): boolean {
    if (!this.ready()) return false;
    return this.rxCount !== 0 || this.rxq.hasUsed();
  }

  /**
   * Prepare to sleep: the header word to wait on (DEVICE_STATE while a reset is unacknowledged,
   * else the interrupt word), or -1 when there is no need to wait (a frame or interrupt is already
   * here). Arms the receive queue's used_event first (virtio 1.2, 2.7.10).
   */
  private waitWord(): number {
    if (!this.ready()) return i32(H.DEVICE_STATE);
    if (this.rxq.arm()) return -1;
    const now = Atomics.load(this.header, i32(H.IRQ));
    if (now === this.irqSeen) return i32(H.IRQ);
    this.irqSeen = now;
    return -1;
  }

  /**
   * The value to wait on: for the interrupt word, the one `waitWord()` saw (an interrupt since then
   * must end the wait at once, not be slept through).
   */
  private waitValue(word: number): number {
    return word === i32(H.IRQ) ? this.irqSeen : Atomics.load(this.header, word);
  }

  /** A reset is polled in short sleeps; an interrupt wait lasts up to the caller's timeout. */
  private waitLimit(word: number, timeoutMs: number): number {
    return word === i32(H.IRQ) ? timeoutMs : Math.min(timeoutMs, 10);
  }

  /** Block this thread until a frame arrives, the config changes, or `timeoutMs` passes. */
  waitSync(timeoutMs = Infinity): void {
    const w = this.waitWord();
    if (w < 0) return;
    Atomics.wait(this.header, w, this.waitValue(w), this.waitLimit(w, timeoutMs));
    this.irqSeen = Atomics.load(this.header, i32(H.IRQ));
  }

  /** Wait without blocking the event loop. */
  async wait(timeoutMs = Infinity): Promise<void> {
    const w = this.waitWord();
    if (w < 0) return;
    const r = Atomics.waitAsync(this.header, w, this.waitValue(w), this.waitLimit(w, timeoutMs));
    if (r.async) await r.value;
    this.irqSeen = Atomics.load(this.header, i32(H.IRQ));
  }

  /**
   * The simple case: `for await (const frame of nic)`. Each frame is a view valid until the next
   * iteration step; copy it to keep it. Ends when the VIF is unplugged.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    while (!this.unplugged) {
      const n = this.receive();
      if (n === 0) {
        await this.wait(100);
        continue;
      }
      for (let i = 0; i < n; i++) yield this.frame(i);
      this.release();
    }
  }
}
