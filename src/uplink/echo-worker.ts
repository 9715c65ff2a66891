/** Worker of the echo uplink (see echo.ts). Stops when the control word of its page is set. */
import { workerData } from 'node:worker_threads';
import { FrameRing } from '../layout/frame-ring.js';
import { W, wake } from '../layout/doorbell.js';
import { copyBytes } from '../device/copy.js';

const { page, stats, pairs, spinUs } = workerData as {
  page: SharedArrayBuffer; stats: SharedArrayBuffer; spinUs: number;
  pairs: { toUplink: SharedArrayBuffer; fromUplink: SharedArrayBuffer; wake: SharedArrayBuffer }[];
};
const p = new Int32Array(page);
const st = new Float64Array(stats);
const ports = pairs.map((x) => ({
  from: new FrameRing(x.toUplink).asConsumer(),
  to: new FrameRing(x.fromUplink).asProducer(),
  wake: new Int32Array(x.wake),
}));
const mac = new Uint8Array(6);

function pump(): number {
  let n = 0;
  for (const port of ports) {
    let moved = 0;
    for (let s = port.from.peek(); s >= 0 && moved < 64; s = port.from.peek()) {
      const len = FrameRing.len(port.from, s);
      const d = port.to.reserve();
      if (d < 0) {
        st[1]! += 1;
      } else {
        const src = port.from.bytes;
        const dst = port.to.bytes;
        const so = FrameRing.data(s);
        const doff = FrameRing.data(d);
        copyBytes(dst, doff, src, so, len);
        // swap destination and source MAC
        copyBytes(mac, 0, dst, doff, 6);
        copyBytes(dst, doff, dst, doff + 6, 6);
        copyBytes(dst, doff + 6, mac, 0, 6);
        port.to.commit(d, len, FrameRing.meta(port.from, s));
        st[0]! += 1;
      }
      port.from.advance();
      moved++;
    }
    if (moved !== 0) {
      port.from.release();
      if (port.to.publish()) wake(port.wake);
    }
    n += moved;
  }
  return n;
}

let idleSince = -1;
while (Atomics.load(p, W.CONTROL) === 0) {
  if (pump() !== 0) {
    idleSince = -1;
    continue;
  }
  const now = performance.now();
  if (idleSince < 0) idleSince = now;
  if ((now - idleSince) * 1000 < spinUs) continue;
  Atomics.store(p, W.SLEEPING, 1);
  const seen = Atomics.load(p, W.WAKE);
  if (!ports.some((x) => x.from.depth() !== 0)) Atomics.wait(p, W.WAKE, seen, 100);
  Atomics.store(p, W.SLEEPING, 0);
  idleSince = -1;
}
