/**
 * Micro-benchmark: what a copy into or out of a SharedArrayBuffer costs in V8 (one thread, no
 * sharing), by alignment. V8 copies shared memory with relaxed atomic word moves only when source
 * and destination have the same address mod 8; otherwise it copies byte by byte.
 *
 *   npx tsc -p . && node dist/bench/micro/sab-copy.js
 *
 * A virtio-net frame sits 12 B (virtio_net_hdr_v1) after a 64 B-aligned buffer start, i.e. at
 * 4 mod 8; the device's frame rings put frames at 16 B (0 mod 8) into 64 B-aligned slots.
 */
import { copyBytes } from '../../src/device/copy.js';

const SLOT = 1600;
const sab = new SharedArrayBuffer(256 * SLOT + 64);
const shared = new Uint8Array(sab);
const shared32 = new Int32Array(sab);
const plain = new Uint8Array(256 * SLOT + 64);
const staging = new Uint8Array(9100);
const staging32 = new Int32Array(staging.buffer);

function bench(name: string, fn: (n: number) => void): void {
  for (let w = 0; w < 3; w++) fn(100_000);
  const n = 1_000_000;
  const t = performance.now();
  fn(n);
  console.log(`${name.padEnd(58)} ${(((performance.now() - t) * 1e6) / n).toFixed(1).padStart(7)} ns`);
}

const frame1500 = new Uint8Array(1500);
const at4 = new Uint8Array(new ArrayBuffer(1600), 4, 1500);
console.log('1500 B copies:');
for (const d of [0, 16, 12, 4]) {
  bench(`  plain template (0 mod 8) -> shared at ${d} mod 64`, (n) => {
    for (let i = 0; i < n; i++) shared.set(frame1500, (i & 255) * SLOT + d);
  });
}
bench('  template at 4 mod 8 -> shared at 12 mod 64 (same alignment)', (n) => {
  for (let i = 0; i < n; i++) shared.set(at4, (i & 255) * SLOT + 12);
});
bench('  plain template -> plain buffer at 12 (no shared memory)', (n) => {
  for (let i = 0; i < n; i++) plain.set(frame1500, (i & 255) * SLOT + 12);
});
bench('  copyBytes shared+12 -> shared+16 (staging-to-ring shape)', (n) => {
  for (let i = 0; i < n; i++) copyBytes(shared, ((i + 100) & 255) * SLOT + 16, shared, (i & 255) * SLOT + 12, 1500);
});
bench('  copyBytes shared+12 -> shared+20 (same alignment)', (n) => {
  for (let i = 0; i < n; i++) copyBytes(shared, ((i + 100) & 255) * SLOT + 20, shared, (i & 255) * SLOT + 12, 1500);
});

console.log('76 B copies (12 B virtio header + 64 B frame), shared -> private staging:');
bench('  copyBytes (byte loop, what the engine does for <= 96 B)', (n) => {
  for (let i = 0; i < n; i++) copyBytes(staging, 0, shared, (i & 255) * SLOT, 76);
});
bench('  set(subarray())', (n) => {
  for (let i = 0; i < n; i++) {
    const o = (i & 255) * SLOT;
    staging.set(shared.subarray(o, o + 76), 0);
  }
});
bench('  19 x Int32 through pre-built views', (n) => {
  for (let i = 0; i < n; i++) {
    const o = ((i & 255) * SLOT) >> 2;
    for (let k = 0; k < 19; k++) staging32[k] = shared32[o + k]!;
  }
});

console.log('12 B virtio header zeroing (driver commitTx):');
bench('  shared.fill(0, off, off + 12)', (n) => {
  for (let i = 0; i < n; i++) shared.fill(0, (i & 255) * SLOT, (i & 255) * SLOT + 12);
});
bench('  3 x Int32 store', (n) => {
  for (let i = 0; i < n; i++) {
    const o = ((i & 255) * SLOT) >> 2;
    shared32[o] = 0;
    shared32[o + 1] = 0;
    shared32[o + 2] = 0;
  }
});
bench('performance.now()', (n) => {
  let s = 0;
  for (let i = 0; i < n; i++) s += performance.now();
  if (s < 0) console.log(s);
});
