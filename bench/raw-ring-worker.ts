/**
 * Baseline 1: a bare SharedArrayBuffer single-producer single-consumer slot ring between two
 * workers, with none of svnic's work (no virtio descriptors, no checks, no switch). It is the
 * practical limit of moving frames between two threads in Node on this machine.
 *
 * ```
 *  ring SharedArrayBuffer
 *  0x00  HEAD i32 (producer writes)        own 64 B line
 *  0x40  TAIL i32 (consumer writes)        own 64 B line
 *  0x80  slot count i32 | slot bytes i32   (immutable)
 *  0xC0  slot 0: len i32 | pad i32 | frame  slotBytes = 64 B-aligned (8 + frame)
 *        slot 1 ...
 * ```
 * Frames start 8-byte aligned: V8 copies into or out of a SharedArrayBuffer word by word only when
 * source and destination have the same alignment mod 8, otherwise byte by byte (about 6x slower
 * for 1500 B; see docs/results-core.md).
 *
 * Both sides work in batches of up to BATCH frames and publish their index once per batch, like
 * svnic does. The producer copies the frame into the slot, the consumer copies it out (the same
 * copy primitives svnic's guest and engine use: `Uint8Array.set` in, `copyBytes` out).
 *
 * Roles: producer / consumer (throughput), ping / pong (round-trip latency over two rings).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { copyBytes } from '../src/device/copy.js';
import { RttRecorder, STAT_BYTES, STAT_FRAMES, stopRequested } from './common.js';

export const HEAD = 0;
export const TAIL = 16;
const SLOTS_AT = 32;
const SLOT_BYTES_AT = 33;
export const DATA = 192;
/** Slot header: len i32 + pad, so the frame starts 8-byte aligned. */
export const SLOT_HEADER = 8;
export const BATCH = 32;

export function createRawRing(slots: number, maxFrame: number): SharedArrayBuffer {
  const slotBytes = Math.ceil((SLOT_HEADER + maxFrame) / 64) * 64;
  const sab = new SharedArrayBuffer(DATA + slots * slotBytes);
  const i32 = new Int32Array(sab);
  i32[SLOTS_AT] = slots;
  i32[SLOT_BYTES_AT] = slotBytes;
  return sab;
}

export interface RawRingWorkerData {
  kind: 'raw-ring';
  role: 'producer' | 'consumer' | 'ping' | 'pong';
  ring: SharedArrayBuffer;
  /** ping/pong: the ring in the other direction. */
  back?: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  stats?: SharedArrayBuffer;
  frameBytes: number;
  warmupMs?: number;
  durationMs?: number;
}

class End {
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  readonly slots: number;
  readonly mask: number;
  readonly slotBytes: number;
  constructor(sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab);
    this.u8 = new Uint8Array(sab);
    this.slots = this.i32[SLOTS_AT]!;
    this.mask = this.slots - 1;
    this.slotBytes = this.i32[SLOT_BYTES_AT]!;
  }
  slot(i: number): number {
    return DATA + (i & this.mask) * this.slotBytes;
  }
}

function producer(d: RawRingWorkerData): void {
  const r = new End(d.ring);
  const ctl = new Int32Array(d.ctl);
  const frame = new Uint8Array(d.frameBytes);
  for (let i = 0; i < frame.length; i++) frame[i] = i & 0xff;
  const len = d.frameBytes;
  let head = 0;
  let tail = 0;
  let seq = 0;
  while (!stopRequested(ctl)) {
    let free = r.slots - ((head - tail) | 0);
    if (free === 0) {
      tail = Atomics.load(r.i32, TAIL);
      free = r.slots - ((head - tail) | 0);
      if (free === 0) continue;
    }
    const n = free < BATCH ? free : BATCH;
    for (let k = 0; k < n; k++) {
      const off = r.slot(head + k);
      r.u8.set(frame, off + SLOT_HEADER);
      r.u8[off + SLOT_HEADER + 14] = seq++;
      r.i32[off >> 2] = len;
    }
    head = (head + n) | 0;
    Atomics.store(r.i32, HEAD, head);
  }
}

function consumer(d: RawRingWorkerData): void {
  const r = new End(d.ring);
  const ctl = new Int32Array(d.ctl);
  const st = new Float64Array(d.stats!);
  const sink = new Uint8Array(r.slotBytes);
  let tail = 0;
  let head = 0;
  let frames = 0;
  let bytes = 0;
  let loops = 0;
  for (;;) {
    if (head === tail) {
      head = Atomics.load(r.i32, HEAD);
      if (head === tail) {
        if ((++loops & 0xffff) === 0 && stopRequested(ctl)) return;
        continue;
      }
    }
    const avail = (head - tail) | 0;
    const n = avail < BATCH ? avail : BATCH;
    for (let k = 0; k < n; k++) {
      const off = r.slot(tail + k);
      const len = r.i32[off >> 2]!;
      copyBytes(sink, 0, r.u8, off + SLOT_HEADER, len);
      bytes += len;
    }
    tail = (tail + n) | 0;
    Atomics.store(r.i32, TAIL, tail);
    frames += n;
    st[STAT_FRAMES] = frames;
    st[STAT_BYTES] = bytes;
    if ((++loops & 0xff) === 0 && stopRequested(ctl)) return;
  }
}

/** Ping: send one frame, spin until it comes back, record the round trip. */
function ping(d: RawRingWorkerData): void {
  const out = new End(d.ring);
  const back = new End(d.back!);
  const frame = new Uint8Array(d.frameBytes);
  const rec = new RttRecorder();
  let head = 0;
  let tail = 0;
  const start = performance.now();
  const measureFrom = start + (d.warmupMs ?? 200);
  const end = measureFrom + (d.durationMs ?? 1000);
  let seq = 0;
  for (;;) {
    const t0 = performance.now();
    if (t0 >= end) break;
    const off = out.slot(head);
    out.u8.set(frame, off + SLOT_HEADER);
    out.u8[off + SLOT_HEADER + 14] = seq;
    out.i32[off >> 2] = frame.length;
    head = (head + 1) | 0;
    Atomics.store(out.i32, HEAD, head);
    while (Atomics.load(back.i32, HEAD) === tail);
    const boff = back.slot(tail);
    if (back.u8[boff + SLOT_HEADER + 14] !== (seq & 0xff)) throw new Error('raw ping-pong: answer out of sequence');
    tail = (tail + 1) | 0;
    Atomics.store(back.i32, TAIL, tail);
    const t1 = performance.now();
    seq++;
    if (t0 >= measureFrom) rec.add((t1 - t0) * 1000);
  }
  parentPort!.postMessage(rec.summary(end - measureFrom));
}

/** Pong: copy every frame from one ring into the other. */
function pong(d: RawRingWorkerData): void {
  const inn = new End(d.ring);
  const out = new End(d.back!);
  const ctl = new Int32Array(d.ctl);
  let tail = 0;
  let head = 0;
  let loops = 0;
  for (;;) {
    if (Atomics.load(inn.i32, HEAD) === tail) {
      if ((++loops & 0xffff) === 0 && stopRequested(ctl)) return;
      continue;
    }
    const ioff = inn.slot(tail);
    const len = inn.i32[ioff >> 2]!;
    const ooff = out.slot(head);
    copyBytes(out.u8, ooff + SLOT_HEADER, inn.u8, ioff + SLOT_HEADER, len);
    out.i32[ooff >> 2] = len;
    tail = (tail + 1) | 0;
    Atomics.store(inn.i32, TAIL, tail);
    head = (head + 1) | 0;
    Atomics.store(out.i32, HEAD, head);
  }
}

if (parentPort && workerData && (workerData as { kind?: string }).kind === 'raw-ring') {
  const d = workerData as RawRingWorkerData;
  if (d.role === 'producer') producer(d);
  else if (d.role === 'consumer') consumer(d);
  else if (d.role === 'ping') ping(d);
  else pong(d);
}
