/**
 * The TAP uplink's threads (two workers, one per direction, so each can block in its own wait):
 *  - `toKernel`: sleeps on the uplink's wake page until engines publish frames, then write()s each
 *    frame from the ring straight to the TAP fd (no copy);
 *  - `fromKernel`: blocks in poll() on the TAP fd (100 ms timeout, to see the stop word), read()s
 *    frames into a private buffer, checks their length and copies them into an engine's ring.
 * The fd is non-blocking (IFF_NO_PI: each read/write is exactly one Ethernet frame). Every drop
 * moves a named counter (TAP_COUNTERS).
 */
import { workerData } from 'node:worker_threads';
import { native } from '../native/index.js';
import { FrameRing } from '../layout/frame-ring.js';
import { counterIndex } from '../layout/uplink-counters.js';
import { MAX_SEGMENT } from '../device/switch.js';
import { CaptureTap, DIR_IN, DIR_OUT, type CaptureRingSpec } from '../capture/capture-ring.js';
import { UplinkPort } from './uplink-port.js';
import type { UplinkRings } from './rings.js';
import { TAP_COUNTERS } from './tap-counters.js';

export interface TapWorkerData {
  role: 'toKernel' | 'fromKernel';
  fd: number;
  segment: number;
  rings: UplinkRings;
  counters: SharedArrayBuffer;
  /** Word 0: set to 1 to stop. */
  stop: SharedArrayBuffer;
  capture: CaptureRingSpec;
  batch: number;
}

const wd = workerData as TapWorkerData;
const n = native();
const c = new Float64Array(wd.counters);
const C = counterIndex(TAP_COUNTERS);
const stop = new Int32Array(wd.stop);
const up = new UplinkPort(wd.rings);
const cap = new CaptureTap(wd.capture);
const EAGAIN = n.EAGAIN;

function toKernel(): void {
  while (Atomics.load(stop, 0) === 0) {
    let work = 0;
    for (let e = 0; e < up.toUplink.length; e++) {
      const r = up.toUplink[e]!;
      let k = 0;
      for (let s = r.peek(); s >= 0 && k < wd.batch; s = r.peek()) {
        const len = FrameRing.len(r, s);
        const data = FrameRing.data(s);
        if ((FrameRing.meta(r, s) & MAX_SEGMENT) !== wd.segment) c[C.tx_wrong_segment] += 1;
        else {
          cap.tap(r.bytes, data, len, DIR_OUT);
          const w = n.write(wd.fd, r.bytes, data, Math.min(len, r.maxFrame));
          if (w >= 0) {
            c[C.tx_frames] += 1;
            c[C.tx_bytes] += len;
          } else if (w === -EAGAIN) c[C.tx_again] += 1;
          else c[C.tx_errors] += 1;
        }
        r.advance();
        k++;
      }
      if (k !== 0) r.release();
      work += k;
    }
    if (work === 0) up.sleepSync(100);
  }
}

function fromKernel(): void {
  const buf = Buffer.alloc(65536);
  const fds = Int32Array.of(wd.fd);
  const events = Int16Array.of(n.POLLIN);
  const revents = new Int16Array(1);
  const maxFrame = Math.min(up.fromUplink[0]!.maxFrame, 14 + 4 + 9000);
  while (Atomics.load(stop, 0) === 0) {
    let k = 0;
    for (; k < wd.batch; k++) {
      const got = n.read(wd.fd, buf, 0, buf.length);
      if (got === -EAGAIN) break;
      if (got < 0) {
        c[C.rx_errors] += 1;
        break;
      }
      if (got < 14) {
        c[C.rx_runt] += 1;
        continue;
      }
      if (got > maxFrame) {
        c[C.rx_oversize] += 1;
        continue;
      }
      cap.tap(buf, 0, got, DIR_IN);
      if (!up.produce(up.pickEngine(buf, 0), buf, 0, got, wd.segment)) {
        c[C.rx_ring_full] += 1;
        continue;
      }
      c[C.rx_frames] += 1;
      c[C.rx_bytes] += got;
    }
    up.publish();
    if (k < wd.batch) n.poll(fds, events, revents, 1, 100);
  }
}

if (wd.role === 'toKernel') toKernel();
else fromKernel();
