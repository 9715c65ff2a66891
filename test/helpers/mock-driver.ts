/**
 * Test rig for driving a device engine in-process, plus a mock virtio-net driver that writes a
 * VIF's rings raw, exactly as a (well-behaved or hostile) guest would: descriptors, avail ring and
 * avail idx, status word and feature words, doorbell. Nothing here checks anything: the mock lets
 * a test write whatever bytes it likes, and the test asserts what the device made of them.
 *
 * The engine is run synchronously with `engine.step(now)`; no worker threads are involved.
 */
import { Engine, type EngineEvent } from '../../src/device/engine.js';
import type { VifSpec } from '../../src/device/engine-vif.js';
import { createWakePage, ring } from '../../src/layout/doorbell.js';
import {
  createCounters, readVifCounters, readEngineCounters, unaccountedFrames,
  type VifCounter, type EngineCounter,
} from '../../src/layout/counters.js';
import { H, i32, vifLayout, QUEUE_GUEST_RX, QUEUE_GUEST_TX, type QueueLayout, type VifLayout } from '../../src/layout/vif.js';
import {
  F_EVENT_IDX, F_MAC, F_MTU, F_STATUS, F_VERSION_1, NET_HDR_BYTES, STATUS_ACKNOWLEDGE, STATUS_DRIVER,
  STATUS_DRIVER_OK, STATUS_FEATURES_OK, features, type Features,
} from '../../src/virtio/constants.js';
import { createVifMemory, DEVICE_FEATURES } from '../../src/hypervisor/device.js';
import { parseMac } from '../../src/device/mac-table.js';

// ---- the engine rig -------------------------------------------------------------------------

export interface RigOptions {
  maxVifs?: number;
  batch?: number;
}

export interface VifOpts {
  queueSize?: number;
  mtu?: number;
  segment?: number;
  linkUp?: boolean;
  promiscuous?: boolean;
  deviceFeatures?: Features;
  /** Anti-spoofing (default true); false for a driver domain's NIC VIF (test/helpers/dd-rig.ts). */
  spoofCheck?: boolean;
  interruptWake?: SharedArrayBuffer;
}

/** One engine (index 0 of 1) with its doorbell page and counters, driven by step(). */
export class Rig {
  readonly maxVifs: number;
  readonly doorbell: SharedArrayBuffer;
  readonly counterSab: SharedArrayBuffer;
  readonly f64: Float64Array;
  readonly engine: Engine;
  readonly events: EngineEvent[] = [];
  /** Engine clock in ms; advanced by step(). */
  now = 0;
  private readonly fdb: { segment: number; mac: string; slot: number }[] = [];

  constructor(opts: RigOptions = {}) {
    this.maxVifs = opts.maxVifs ?? 8;
    this.doorbell = createWakePage(this.maxVifs);
    this.counterSab = createCounters(this.maxVifs, 1);
    this.f64 = new Float64Array(this.counterSab);
    this.engine = new Engine({
      index: 0, engines: 1, maxVifs: this.maxVifs, doorbell: this.doorbell, control: createWakePage(32), counters: this.counterSab,
      irqMode: 'direct', spinUs: 0, sweepMs: 100, batch: opts.batch ?? 64,
    });
    this.engine.onEvent = (e) => this.events.push(e);
  }

  /** Allocate VIF memory like the hypervisor does, give the VIF to the engine and to the FDB. */
  addVif(slot: number, mac: string, o: VifOpts = {}): SharedArrayBuffer {
    const queueSize = o.queueSize ?? 16;
    const mtu = o.mtu ?? 1500;
    const sab = createVifMemory(slot, queueSize, mtu, mac);
    const spec: VifSpec = {
      slot, sab, queueSize, mac, mtu, segment: o.segment ?? 0, linkUp: o.linkUp ?? true,
      promiscuous: o.promiscuous ?? false, multicast: [], coalesce: { frames: 1, usecs: 0 },
      deviceFeatures: o.deviceFeatures ?? DEVICE_FEATURES, spoofCheck: o.spoofCheck, interruptWake: o.interruptWake,
    };
    this.engine.addVif(spec);
    this.fdb.push({ segment: spec.segment, mac, slot });
    const slotEngine = new Array<number>(this.maxVifs).fill(-1);
    for (const e of this.fdb) slotEngine[e.slot] = 0;
    this.engine.setFdb(this.fdb, slotEngine);
    return sab;
  }

  /** Run `n` engine iterations; returns the total work reported. */
  step(n = 1): number {
    let work = 0;
    for (let i = 0; i < n; i++) {
      this.now += 1;
      work += this.engine.step(this.now);
    }
    return work;
  }

  vifCounters(slot: number): Record<VifCounter, number> {
    return readVifCounters(this.f64, slot);
  }

  engineCounters(): Record<EngineCounter, number> {
    return readEngineCounters(this.f64, this.maxVifs, 0);
  }

  /**
   * The switch's conservation law (device/switch.ts, Device.unaccounted) for a quiet engine:
   * frames in + flood copies - (deliveries + frames out + counted drops). 0 = nothing lost.
   */
  unaccounted(): number {
    return unaccountedFrames(this.f64, this.maxVifs, 1);
  }
}

// ---- frames -----------------------------------------------------------------------------------

export const ETHERTYPE_TEST = 0x88b5; // IEEE 802 local experimental

/** An Ethernet frame (len >= 14): dst, src, ethertype 0x88b5, then `seq` as u32 and a byte pattern. */
export function ethFrame(dst: string, src: string, len = 64, seq = 0): Uint8Array {
  const f = new Uint8Array(len);
  f.set(parseMac(dst)!, 0);
  f.set(parseMac(src)!, 6);
  f[12] = ETHERTYPE_TEST >> 8;
  f[13] = ETHERTYPE_TEST & 0xff;
  if (len >= 18) new DataView(f.buffer).setUint32(14, seq >>> 0);
  for (let i = 18; i < len; i++) f[i] = (i + seq) & 0xff;
  return f;
}

// ---- the mock driver --------------------------------------------------------------------------

/** What a used ring entry says (virtio 1.2, 2.7.8). */
export interface UsedElem {
  id: number;
  len: number;
}

/**
 * One split virtqueue as raw memory (virtio 1.2, 2.7.5-2.7.8). Every write is unchecked: indices,
 * addresses, lengths, flags and `next` go into guest memory exactly as given.
 */
export class RawQueue {
  readonly size: number;
  readonly layout: QueueLayout;
  readonly desc32: Uint32Array;
  readonly avail16: Uint16Array;
  readonly used16: Uint16Array;
  readonly used32: Uint32Array;
  /** The driver's shadow avail idx: where add() writes next and what publish() stores. */
  availIdx = 0;
  /** Next used entry takeUsed() reads. */
  lastUsed = 0;

  constructor(sab: SharedArrayBuffer, q: QueueLayout) {
    this.size = q.size;
    this.layout = q;
    this.desc32 = new Uint32Array(sab, q.desc, 4 * q.size);
    this.avail16 = new Uint16Array(sab, q.avail, 3 + q.size);
    this.used16 = new Uint16Array(sab, q.used, 3 + 4 * q.size);
    this.used32 = new Uint32Array(sab, q.used + 4, 2 * q.size);
  }

  /** Write descriptor `i` (i < size). `addr` may exceed 2^32; `addrHi` overrides the high word. */
  setDesc(i: number, addr: number, len: number, flags: number, next: number, addrHi?: number): void {
    const w = i << 2;
    this.desc32[w] = addr >>> 0;
    this.desc32[w + 1] = addrHi ?? Math.floor(addr / 0x100000000) >>> 0;
    this.desc32[w + 2] = len >>> 0;
    this.desc32[w + 3] = (flags & 0xffff) | ((next & 0xffff) << 16);
  }

  /** Put `head` (any u16, unchecked) in the next avail ring entry. Visible after publish(). */
  add(head: number): void {
    this.avail16[2 + (this.availIdx % this.size)] = head & 0xffff;
    this.availIdx = (this.availIdx + 1) & 0xffff;
  }

  /** Store the avail idx: the shadow, or any raw u16 (an "avail index jump"). */
  publish(idx: number = this.availIdx): void {
    this.availIdx = idx & 0xffff;
    Atomics.store(this.avail16, 1, this.availIdx);
  }

  get publishedAvail(): number {
    return Atomics.load(this.avail16, 1);
  }

  usedIdx(): number {
    return Atomics.load(this.used16, 1);
  }

  usedElem(k: number): UsedElem {
    const w = (k % this.size) << 1;
    return { id: this.used32[w]!, len: this.used32[w + 1]! };
  }

  /** Used entries published since the last call. */
  takeUsed(): UsedElem[] {
    const out: UsedElem[] = [];
    const idx = this.usedIdx();
    while (this.lastUsed !== idx) {
      out.push(this.usedElem(this.lastUsed));
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
    }
    return out;
  }

  /** Zero the three ring parts and the shadows (what a driver does before re-initialising). */
  clear(): void {
    this.desc32.fill(0);
    this.avail16.fill(0);
    this.used16.fill(0);
    this.availIdx = 0;
    this.lastUsed = 0;
  }
}

/** The features a well-behaved driver accepts from svnic's offer (same set as VirtioNetDriver). */
export const GOOD_FEATURES = features(F_VERSION_1, F_MAC, F_MTU, F_STATUS, F_EVENT_IDX);

export class MockDriver {
  readonly sab: SharedArrayBuffer;
  readonly bytes: Uint8Array;
  readonly header: Int32Array;
  readonly doorbell: Int32Array;
  readonly slot: number;
  readonly layout: VifLayout;
  readonly rx: RawQueue; // receiveq1 (guestRx)
  readonly tx: RawQueue; // transmitq1 (guestTx)

  constructor(sab: SharedArrayBuffer, doorbell: SharedArrayBuffer) {
    this.sab = sab;
    this.bytes = new Uint8Array(sab);
    this.header = new Int32Array(sab, 0, 1024);
    this.doorbell = new Int32Array(doorbell);
    this.slot = this.header[i32(H.DOORBELL_BIT)]!;
    const q = this.header[i32(H.QUEUE_SIZE)]!;
    const L = vifLayout(q, this.header[i32(H.MTU)]!);
    this.layout = { ...L, buffersOffset: this.header[i32(H.BUFFERS_OFFSET)]!, buffersSize: this.header[i32(H.BUFFERS_SIZE)]! };
    this.rx = new RawQueue(sab, L.queues[QUEUE_GUEST_RX]);
    this.tx = new RawQueue(sab, L.queues[QUEUE_GUEST_TX]);
  }

  get size(): number {
    return this.layout.queueSize;
  }

  /** One packet buffer per (queue, index) in the buffer area, like VirtioNetDriver lays them out. */
  rxBuf(i: number): number {
    return this.layout.buffersOffset + i * this.layout.bufferBytes;
  }
  txBuf(i: number): number {
    return this.layout.buffersOffset + (this.layout.queueSize + i) * this.layout.bufferBytes;
  }

  // ---- status and features (virtio 1.2, 2.1, 3.1.1) --------------------------------------

  status(): number {
    return Atomics.load(this.header, i32(H.STATUS));
  }
  setStatus(s: number): void {
    Atomics.store(this.header, i32(H.STATUS), s | 0);
  }
  setDriverFeatures(f: Features): void {
    Atomics.store(this.header, i32(H.DRIVER_FEATURES_LO), f.lo | 0);
    Atomics.store(this.header, i32(H.DRIVER_FEATURES_HI), f.hi | 0);
  }
  deviceFeatures(): Features {
    return { lo: this.header[i32(H.DEVICE_FEATURES_LO)]! >>> 0, hi: this.header[i32(H.DEVICE_FEATURES_HI)]! >>> 0 };
  }
  irqCount(): number {
    return Atomics.load(this.header, i32(H.IRQ));
  }

  /**
   * The initialisation sequence of virtio 1.2, 3.1.1 as VirtioNetDriver.start() writes it: reset,
   * ACKNOWLEDGE | DRIVER, driver features, FEATURES_OK, zeroed rings, DRIVER_OK. It does not kick:
   * call kick() (or not) as the test needs. Nothing is checked, so any feature set can be accepted.
   */
  init(f: Features = GOOD_FEATURES): void {
    this.setStatus(0);
    this.setStatus(STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    this.setDriverFeatures(f);
    this.setStatus(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    this.rx.clear();
    this.tx.clear();
    this.setStatus(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
  }

  /** Ring this VIF's bit in the engine's doorbell page (layout/doorbell.ts). */
  kick(): void {
    ring(this.doorbell, this.slot);
  }

  // ---- well-formed traffic ---------------------------------------------------------------

  /** Copy a 12-byte virtio_net_hdr_v1 (default: all zero) and a frame to guest address `addr`. */
  writePacket(addr: number, frame: Uint8Array, hdr: ArrayLike<number> = new Uint8Array(NET_HDR_BYTES)): number {
    this.bytes.fill(0, addr, addr + NET_HDR_BYTES);
    this.bytes.set(hdr, addr);
    this.bytes.set(frame, addr + NET_HDR_BYTES);
    return NET_HDR_BYTES + frame.length;
  }

  /** Queue one well-formed single-descriptor TX chain in descriptor `i` and publish it. */
  sendGood(i: number, frame: Uint8Array): void {
    const len = this.writePacket(this.txBuf(i), frame);
    this.tx.setDesc(i, this.txBuf(i), len, 0, 0);
    this.tx.add(i);
    this.tx.publish();
  }

  /** Post `n` well-formed device-writable RX buffers (descriptors 0..n-1) and publish them. */
  postRx(n = this.size, first = 0): void {
    for (let k = 0; k < n; k++) {
      const i = (first + k) % this.size;
      this.rx.setDesc(i, this.rxBuf(i), this.layout.bufferBytes, 2 /* VIRTQ_DESC_F_WRITE */, 0);
      this.rx.add(i);
    }
    this.rx.publish();
  }

  /** The frame (after the virtio header) the device wrote into RX descriptor `id`'s buffer. */
  rxFrame(e: UsedElem): Uint8Array {
    const addr = this.rxBuf(e.id) + NET_HDR_BYTES;
    return this.bytes.slice(addr, addr + e.len - NET_HDR_BYTES);
  }
}
