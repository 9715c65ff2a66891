/**
 * Micro-benchmark: the notification round trip of a VM VIF without QEMU, next to the isolate
 * path, to justify the kick relay thread (docs/vm.md).
 *
 *   npx tsc -p . && node dist/bench/micro/kick-path.js [iterations=2000]
 *
 * atomics: the main thread rings a doorbell page (bit + wake) and an "engine" worker asleep in
 *   Atomics.wait answers on a second page: an isolate's kick and interrupt (2 threads).
 * vm: the main thread writes a kick eventfd; the real kick relay thread (poll) rings the engine's
 *   doorbell page; the "engine" worker wakes from Atomics.wait and writes a call eventfd; the main
 *   thread waits for it in poll(2): a VM's kick and interrupt minus QEMU (3 threads).
 * Both report round-trip p50/p99 in µs. Each thread sleeps between hops (no spinning).
 */
import { Worker } from 'node:worker_threads';
import { createWakePage, ring, W } from '../../src/layout/doorbell.js';
import { native } from '../../src/native/index.js';
import { KickRelay } from '../../src/vhost-user/kick-relay.js';

const iterations = Number(process.argv[2] ?? 2000);
const n = native();

/** "Engine": sleep on page `db` per the doorbell protocol; on each wake answer once (fd or page). */
const engineSrc = `
const { workerData } = require('node:worker_threads');
const db = new Int32Array(workerData.db);
const back = workerData.back ? new Int32Array(workerData.back) : null;
const n = workerData.addon ? require(workerData.addon) : null;
const W = workerData.W;
for (let i = 0; i < workerData.iterations; i++) {
  for (;;) {
    Atomics.store(db, W.SLEEPING, 1);
    const seen = Atomics.load(db, W.WAKE);
    if (Atomics.exchange(db, W.SUMMARY, 0) !== 0) { Atomics.store(db, W.SLEEPING, 0); break; }
    Atomics.wait(db, W.WAKE, seen);
  }
  db.fill(0, W.BITMAP, W.BITMAP + 1);
  if (back) { Atomics.add(back, W.WAKE, 1); Atomics.notify(back, W.WAKE, 1); }
  else n.eventfdWrite(workerData.callFd, 1);
}
`;

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(1);
  return `p50 ${q(0.5)} µs, p99 ${q(0.99)} µs (${s.length} round trips)`;
}

async function atomicsPath(): Promise<number[]> {
  const db = createWakePage(32);
  const back = createWakePage(32);
  const w = new Worker(engineSrc, { eval: true, workerData: { db, back, W, iterations } });
  const b = new Int32Array(back);
  const page = new Int32Array(db);
  const rtts: number[] = [];
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < iterations; i++) {
    const seen = Atomics.load(b, W.WAKE);
    const t0 = performance.now();
    ring(page, 0);
    Atomics.wait(b, W.WAKE, seen);
    rtts.push((performance.now() - t0) * 1000);
  }
  await w.terminate();
  return rtts;
}

async function vmPath(): Promise<number[]> {
  const db = createWakePage(32);
  const kick = n.eventfd(0, true);
  const call = n.eventfd(0, true);
  const relay = new KickRelay();
  await relay.set('bench', 0, db, [kick]);
  await new Promise((r) => setTimeout(r, 50));
  new Int32Array(db).fill(0, W.SUMMARY, W.BITMAP + 1); // the ring set() makes on registration
  const { createRequire } = await import('node:module');
  const addon = createRequire(import.meta.url).resolve('../../../native/build/Release/svnic_native.node');
  const w = new Worker(engineSrc, { eval: true, workerData: { db, W, iterations, addon, callFd: call } });
  await new Promise((r) => setTimeout(r, 100));
  const fds = Int32Array.of(call);
  const ev = Int16Array.of(n.POLLIN);
  const rev = new Int16Array(1);
  const rtts: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    n.eventfdWrite(kick, 1);
    n.poll(fds, ev, rev, 1, 5000);
    n.eventfdRead(call);
    rtts.push((performance.now() - t0) * 1000);
  }
  await w.terminate();
  await relay.stop();
  n.close(kick);
  n.close(call);
  return rtts;
}

console.log(`atomics (isolate kick + interrupt, 2 threads): ${stats(await atomicsPath())}`);
console.log(`vm (eventfd kick -> relay -> engine -> call eventfd, 3 threads): ${stats(await vmPath())}`);
