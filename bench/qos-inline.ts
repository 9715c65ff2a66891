/**
 * The priority scenario of `svnic bench qos` without threads: one engine stepped in this thread,
 * three neighbour VIFs whose rings are refilled before every iteration (1500 B frames) and one
 * ping VIF that queues a 64 B frame every 10th iteration, all to an uplink ring drained here.
 * Measured: how many frames the engine switched before the ping in the ping's iteration, and how
 * long the iteration took up to the ping (its share of the iteration's time, by frame position).
 * No scheduler, no other thread: this is the engine's own contribution to the ping's latency,
 * which on a 2-core machine shared with other work is buried under thread scheduling.
 */
import { Engine } from '../src/device/engine.js';
import { createWakePage } from '../src/layout/doorbell.js';
import { createCounters } from '../src/layout/counters.js';
import { createFrameRing, FrameRing } from '../src/layout/frame-ring.js';
import { createQosTable, writeQosRow, emptyQosRow } from '../src/layout/qos.js';
import { DEVICE_FEATURES, createVifMemory } from '../src/hypervisor/device.js';
import { VirtioNetDriver } from '../src/guest/driver.js';
import { alignedFor, macBytes, makeFrame, pct } from './common.js';

export type InlineMode = 'no-qos' | 'weight' | 'priority';

export function pingOrder(mode: InlineMode, iterations = 20_000) {
  const MAX = 8;
  const mac = (i: number) => `02:00:00:00:00:${(16 + i).toString(16)}`;
  const doorbell = createWakePage(MAX);
  const table = createQosTable(MAX);
  const eng = new Engine({ index: 0, engines: 1, maxVifs: MAX, doorbell, control: createWakePage(32), counters: createCounters(MAX, 1), irqMode: 'direct', spinUs: 0, sweepMs: 100, batch: 32, qos: table });
  const r = createFrameRing(1024, 9018);
  eng.sw.toUplink = new FrameRing(r).asProducer();
  const up = new FrameRing(r).asConsumer();
  const nics: VirtioNetDriver[] = [];
  for (let s = 0; s < 4; s++) {
    const sab = createVifMemory(s, 256, 1500, mac(s));
    eng.addVif({ slot: s, sab, queueSize: 256, mac: mac(s), mtu: 1500, segment: 0, linkUp: true, promiscuous: false, multicast: [], coalesce: { frames: 1, usecs: 0 }, deviceFeatures: DEVICE_FEATURES });
    nics.push(new VirtioNetDriver({ vifId: `v${s}`, vif: sab, doorbell }));
  }
  eng.setFdb([0, 1, 2, 3].map((s) => ({ segment: 0, mac: mac(s), slot: s })), [0, 0, 0, 0]);
  if (mode === 'priority') writeQosRow(table, 3, { ...emptyQosRow(), enabled: true, priority: 1 });
  if (mode === 'weight') writeQosRow(table, 3, { ...emptyQosRow(), enabled: true, weight: 4 });
  const dst = macBytes('02:be:ef:00:00:01');
  const big = nics.map((n, i) => alignedFor(makeFrame(1500, dst, macBytes(mac(i))), n.txOffset(0)));
  const ping = alignedFor(makeFrame(64, dst, macBytes(mac(3))), nics[3]!.txOffset(0));
  const ahead: number[] = [];
  const usAhead: number[] = [];
  for (let it = 0; it < iterations; it++) {
    for (let s = 0; s < 3; s++) {
      const n = nics[s]!;
      for (let slot = n.reserveTx(); slot >= 0; slot = n.reserveTx()) {
        n.bytes.set(big[s]!, n.txOffset(slot));
        n.commitTx(slot, 1500);
      }
      n.flush();
    }
    const pinging = it % 10 === 0;
    if (pinging) {
      const n = nics[3]!;
      const slot = n.reserveTx();
      n.bytes.set(ping, n.txOffset(slot));
      n.commitTx(slot, 64);
      n.flush();
    }
    const t0 = performance.now();
    eng.step(t0);
    const dt = (performance.now() - t0) * 1000;
    let pos = -1;
    let k = 0;
    for (let s = up.peek(); s >= 0; s = up.peek()) {
      if (pinging && pos < 0 && up.bytes[FrameRing.data(s) + 11] === 16 + 3) pos = k;
      k++;
      up.advance();
    }
    up.release();
    for (const n of nics) {
      n.receive();
      n.release();
    }
    if (pinging && pos >= 0 && it > iterations / 10) {
      ahead.push(pos);
      usAhead.push((dt * pos) / Math.max(1, k));
    }
  }
  ahead.sort((a, b) => a - b);
  usAhead.sort((a, b) => a - b);
  return {
    mode, pings: ahead.length,
    framesAheadP50: pct(ahead, 0.5), framesAheadP99: pct(ahead, 0.99),
    usAheadP50: Math.round(pct(usAhead, 0.5) * 100) / 100, usAheadP99: Math.round(pct(usAhead, 0.99) * 100) / 100,
  };
}
