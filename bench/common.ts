/**
 * Small pieces shared by the benchmark orchestrator (core.ts) and its workers and guests:
 * the start/stop control word, shared result counters, RTT sample recording and percentiles.
 *
 * Control page (Int32Array over a SharedArrayBuffer, written by the orchestrator only):
 *   CTL_STATE: RUN (0) while a trial runs, STOP (1) when every worker or guest must return.
 * Counter page (Float64Array, written by exactly one worker): STAT_FRAMES, STAT_BYTES.
 */

export const CTL_STATE = 0;
export const RUN = 0;
export const STOP = 1;

export const STAT_FRAMES = 0;
export const STAT_BYTES = 1;

export function createControl(): SharedArrayBuffer {
  return new SharedArrayBuffer(64);
}

export function createStats(): SharedArrayBuffer {
  return new SharedArrayBuffer(64);
}

export function stopRequested(ctl: Int32Array): boolean {
  return Atomics.load(ctl, CTL_STATE) === STOP;
}

export function requestStop(ctl: SharedArrayBuffer): void {
  const c = new Int32Array(ctl);
  Atomics.store(c, CTL_STATE, STOP);
  Atomics.notify(c, CTL_STATE);
}

export interface RttSummary {
  /** Round trips measured (after warm-up). */
  n: number;
  /** Round trips that got no answer within the loss timeout (resent). */
  lost: number;
  p50us: number;
  p99us: number;
  p999us: number;
  minUs: number;
  maxUs: number;
  meanUs: number;
  /** Round trips per second over the measured window. */
  rate: number;
}

/**
 * Fixed-capacity RTT recorder (µs); no allocation while recording. Past its capacity it keeps
 * counting (for the rate) but stores only every other sample, then every fourth, and so on, so
 * the percentiles still cover the whole window.
 */
export class RttRecorder {
  private readonly s: Float64Array;
  private stored = 0;
  private stride = 1;
  /** Round trips recorded (all of them, stored or not). */
  n = 0;
  lost = 0;
  constructor(capacity = 2_000_000) {
    this.s = new Float64Array(capacity);
  }
  add(us: number): void {
    if (this.n++ % this.stride !== 0) return;
    if (this.stored === this.s.length) {
      // Full: keep every other stored sample and double the stride.
      for (let i = 0; i < this.stored >> 1; i++) this.s[i] = this.s[2 * i]!;
      this.stored >>= 1;
      this.stride *= 2;
      if ((this.n - 1) % this.stride !== 0) return;
    }
    this.s[this.stored++] = us;
  }
  summary(elapsedMs: number): RttSummary {
    const a = this.s.subarray(0, this.stored).sort();
    const n = a.length;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += a[i]!;
    return {
      n: this.n, lost: this.lost,
      p50us: pct(a, 0.5), p99us: pct(a, 0.99), p999us: pct(a, 0.999),
      minUs: n ? a[0]! : NaN, maxUs: n ? a[n - 1]! : NaN, meanUs: n ? sum / n : NaN,
      rate: elapsedMs > 0 ? (this.n / elapsedMs) * 1000 : 0,
    };
  }
}

/** Nearest-rank percentile of an ascending array. */
export function pct(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))]!;
}

export function median(xs: readonly number[]): number {
  const a = xs.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  if (a.length === 0) return NaN;
  const m = a.length >> 1;
  return a.length % 2 ? a[m]! : (a[m - 1]! + a[m]!) / 2;
}

/** A test frame of `bytes` bytes: dst, src, ethertype 0x88b5 (local experimental), zero payload. */
export function makeFrame(bytes: number, dst: Uint8Array, src: Uint8Array): Uint8Array {
  const f = new Uint8Array(bytes);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  for (let i = 14; i < bytes; i++) f[i] = i & 0xff;
  return f;
}

export function macBytes(mac: string): Uint8Array {
  const parts = mac.split(':');
  if (parts.length !== 6) throw new RangeError(`bad MAC ${mac}`);
  return Uint8Array.from(parts.map((h) => parseInt(h, 16)));
}

/**
 * A copy of `frame` whose byteOffset is congruent to `dstOffset` mod 8. V8 copies between a
 * SharedArrayBuffer and another buffer word by word only when both addresses have the same
 * alignment mod 8, else byte by byte (about 6x slower for 1500 B). A virtio-net frame starts 12 B
 * into its buffer (after virtio_net_hdr_v1), so a plain 8-aligned template would be the slow case.
 */
export function alignedFor(frame: Uint8Array, dstOffset: number): Uint8Array {
  const pad = dstOffset & 7;
  const out = new Uint8Array(new ArrayBuffer(frame.length + 8), pad, frame.length);
  out.set(frame);
  return out;
}
