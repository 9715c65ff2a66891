/**
 * QoS inside a real engine, stepped by hand with a fake clock: guest-TX limits hold the guest's
 * ring (backpressure, no drops), weights share a shaped uplink, a limit changed mid-run takes
 * effect, guest-RX limits queue and count, priority VIFs go first and stay bounded. Guests use
 * the real driver in-process; the uplink is a frame ring this test drains.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/device/engine.js';
import { createWakePage } from '../../src/layout/doorbell.js';
import { createCounters, readVifCounters, readEngineCounters, unaccountedFrames, VIF_DROP_COUNTERS } from '../../src/layout/counters.js';
import { createFrameRing, FrameRing } from '../../src/layout/frame-ring.js';
import { createQosTable, writeQosRow, writeQosPort, emptyQosRow, DEFAULT_QUANTUM, type QosRow } from '../../src/layout/qos.js';
import { createVifMemory, DEVICE_FEATURES } from '../../src/hypervisor/device.js';
import { VirtioNetDriver } from '../../src/guest/driver.js';
import { ethFrame } from '../helpers/mock-driver.js';

const MAX = 8;
const macOf = (i: number): string => `02:00:00:00:00:${(i + 16).toString(16)}`;
const NOBODY = '02:99:00:00:00:01'; // unknown unicast: goes to the uplink

class QosRig {
  readonly doorbell = createWakePage(MAX);
  readonly counters = createCounters(MAX, 1);
  readonly f64 = new Float64Array(this.counters);
  readonly table = createQosTable(MAX);
  readonly engine: Engine;
  readonly uplink: FrameRing;
  readonly nics: VirtioNetDriver[] = [];
  /** Frames seen on the uplink per source VIF, in order. */
  readonly uplinkOrder: number[] = [];
  now = 0;

  constructor(n: number, batch = 32) {
    this.engine = new Engine({
      index: 0, engines: 1, maxVifs: MAX, doorbell: this.doorbell, control: createWakePage(32), counters: this.counters,
      irqMode: 'direct', spinUs: 0, sweepMs: 100, batch, qos: this.table,
    });
    const r = createFrameRing(1024, 9018);
    this.engine.sw.toUplink = new FrameRing(r).asProducer();
    this.uplink = new FrameRing(r).asConsumer();
    const fdb = [];
    for (let s = 0; s < n; s++) {
      const sab = createVifMemory(s, 256, 1500, macOf(s));
      this.engine.addVif({
        slot: s, sab, queueSize: 256, mac: macOf(s), mtu: 1500, segment: 0, linkUp: true, promiscuous: false,
        multicast: [], coalesce: { frames: 1, usecs: 0 }, deviceFeatures: DEVICE_FEATURES,
      });
      fdb.push({ segment: 0, mac: macOf(s), slot: s });
      this.nics.push(new VirtioNetDriver({ vifId: `v${s}`, vif: sab, doorbell: this.doorbell }));
    }
    this.engine.setFdb(fdb, new Array(MAX).fill(0));
    this.engine.step(this.now);
  }

  qos(slot: number, q: Partial<QosRow>): void {
    writeQosRow(this.table, slot, { ...emptyQosRow(), enabled: true, ...q });
  }

  /** Fill VIF s's transmit ring with frames to `dst`; returns frames queued. */
  fill(s: number, dst: string, len: number): number {
    const nic = this.nics[s]!;
    const f = ethFrame(dst, macOf(s), len);
    let n = 0;
    for (;;) {
      const slot = nic.reserveTx();
      if (slot < 0) break;
      nic.bytes.set(f, nic.txOffset(slot));
      nic.commitTx(slot, len);
      n++;
    }
    nic.flush();
    return n;
  }

  drainUplink(): void {
    for (let s = this.uplink.peek(); s >= 0; s = this.uplink.peek()) {
      const d = FrameRing.data(s);
      this.uplinkOrder.push(this.uplink.bytes[d + 11]! - 16); // last byte of the source MAC
      this.uplink.advance();
    }
    this.uplink.release();
  }

  step(dt: number): void {
    this.now += dt;
    this.engine.step(this.now);
    this.drainUplink();
  }

  vif(s: number) {
    return readVifCounters(this.f64, s);
  }

  engineCounters() {
    return readEngineCounters(this.f64, MAX, 0);
  }

  unaccounted(): number {
    return unaccountedFrames(this.f64, MAX, 1);
  }
}

const txDrops = (c: Record<string, number>): number => VIF_DROP_COUNTERS.filter((k) => k.startsWith('tx_')).reduce((s, k) => s + c[k]!, 0);

test('a guest-TX frame limit holds the guest: its ring fills (backpressure), nothing is dropped, the rate is exact', () => {
  const rig = new QosRig(1);
  rig.qos(0, { txPps: 10_000, txBurstFrames: 32 });
  let queued = 0;
  for (let t = 0; t < 10_000; t++) {
    queued += rig.fill(0, NOBODY, 64);
    rig.step(0.1); // 1000 fake ms in all
  }
  const c = rig.vif(0);
  // 10 000 frames/s for 1 s, plus the burst, plus at most one frame of debt
  assert.ok(c.tx_frames >= 10_000 - 1 && c.tx_frames <= 10_000 + 32 + 1, `tx_frames ${c.tx_frames}`);
  assert.equal(txDrops(c), 0);
  assert.ok(rig.nics[0]!.stats.txRingFull > 0, 'the guest saw its ring full');
  assert.equal(queued - c.tx_frames, rig.engine.vifs[0]!.dev!.fromGuestQ.pending(), 'frames not taken are still in the ring');
  assert.ok(c.qos_tx_holds > 0);
  assert.equal(rig.unaccounted(), 0);
});

test('a guest-TX bit-rate limit holds 100 Mbit/s of 1500 B frames to within the burst and one frame', () => {
  const rig = new QosRig(1);
  rig.qos(0, { txBps: 100e6, txBurstBytes: 15_000 });
  for (let t = 0; t < 20_000; t++) {
    rig.fill(0, NOBODY, 1500);
    rig.step(0.05); // 1000 fake ms
  }
  const c = rig.vif(0);
  const want = 12_500 * 1000; // bytes in 1 s
  assert.ok(c.tx_bytes >= want - 1500 && c.tx_bytes <= want + 15_000 + 1500, `tx_bytes ${c.tx_bytes}`);
  assert.equal(txDrops(c), 0);
});

test('weights 1:2:3:4 share a shaped uplink 10/20/30/40 %, and a weight change mid-run moves the shares', () => {
  const rig = new QosRig(4);
  writeQosPort(rig.table, { capacityBps: 400e6, priorityShare: 0.5, quantum: DEFAULT_QUANTUM });
  [1, 2, 3, 4].forEach((w, s) => rig.qos(s, { weight: w }));
  const run = (ms: number): number[] => {
    const before = [0, 1, 2, 3].map((s) => rig.vif(s).tx_bytes);
    for (let t = 0; t < ms * 20; t++) {
      for (let s = 0; s < 4; s++) rig.fill(s, NOBODY, 1500);
      rig.step(0.05);
    }
    return [0, 1, 2, 3].map((s) => rig.vif(s).tx_bytes - before[s]!);
  };
  const got = run(1000);
  const total = got.reduce((a, b) => a + b, 0);
  [0.1, 0.2, 0.3, 0.4].forEach((want, s) => assert.ok(Math.abs(got[s]! / total - want) < 0.005, `VIF ${s}: ${got[s]! / total}`));
  // the port holds its capacity: 50 000 B/ms for 1000 ms (plus its burst and a frame)
  assert.ok(total >= 50e6 - 1500 && total <= 50e6 + 250_000 + 1500, `total ${total}`);
  rig.qos(0, { weight: 4 }); // now 4:2:3:4
  run(5); // let the change settle within a few passes
  const after = run(1000);
  const t2 = after.reduce((a, b) => a + b, 0);
  [4 / 13, 2 / 13, 3 / 13, 4 / 13].forEach((want, s) => assert.ok(Math.abs(after[s]! / t2 - want) < 0.005, `VIF ${s}: ${after[s]! / t2}`));
  for (let s = 0; s < 4; s++) assert.equal(txDrops(rig.vif(s)), 0);
  assert.equal(rig.engineCounters().uplink_tx_full, 0);
});

test('a limit changed mid-run takes effect without stopping traffic; removing it lifts it', () => {
  const rig = new QosRig(1);
  rig.qos(0, { txPps: 1000, txBurstFrames: 10 });
  const run = (ms: number): number => {
    const b = rig.vif(0).tx_frames;
    for (let t = 0; t < ms * 10; t++) {
      rig.fill(0, NOBODY, 64);
      rig.step(0.1);
    }
    return rig.vif(0).tx_frames - b;
  };
  const slow = run(1000);
  assert.ok(slow >= 999 && slow <= 1011, `${slow}`);
  rig.qos(0, { txPps: 5000, txBurstFrames: 10 });
  const fast = run(1000);
  assert.ok(fast >= 4999 && fast <= 5011, `${fast}`);
  writeQosRow(rig.table, 0, emptyQosRow()); // QoS off: the plain round robin takes the VIF back
  const free = run(100);
  assert.ok(free > 5000, `${free}`);
  assert.equal(txDrops(rig.vif(0)), 0);
});

test('a guest-RX limit holds a sender on the same engine (backpressure, no drops) and places frames at the rate', () => {
  const rig = new QosRig(2);
  rig.qos(1, { rxPps: 2000, rxBurstFrames: 20 });
  let sent = 0;
  for (let t = 0; t < 1000; t++) {
    sent += rig.fill(0, macOf(1), 64);
    rig.step(0.1); // 100 fake ms
    rig.nics[1]!.receive();
    rig.nics[1]!.release();
  }
  const mid = rig.vif(1);
  // 2000 frames/s for 0.1 s + burst
  assert.ok(mid.rx_frames >= 200 - 1 && mid.rx_frames <= 200 + 20 + 1, `rx_frames ${mid.rx_frames}`);
  assert.equal(mid.rx_qos_overflow, 0, 'no frame dropped: the sender was held instead');
  assert.ok(rig.vif(0).qos_tx_holds > 0);
  assert.ok(sent - rig.vif(0).tx_frames > 0, 'frames wait in the sender\'s ring');
  // stop sending: the queue drains at the rate; then every frame is accounted for
  for (let t = 0; t < 3000; t++) {
    rig.step(0.1);
    rig.nics[1]!.receive();
    rig.nics[1]!.release();
  }
  const c = rig.vif(1);
  assert.equal(rig.vif(0).tx_frames, sent, 'the sender\'s ring was emptied at the receiver\'s rate');
  assert.equal(rig.unaccounted(), 0);
  assert.equal(sent, c.rx_frames + c.rx_no_buffer);
});

test('frames from the uplink for a VIF over its guest-RX limit queue (bounded) and overflow is counted', () => {
  const rig = new QosRig(1);
  const r = createFrameRing(512, 9018);
  rig.engine.sw.fromUplink = [new FrameRing(r).asConsumer()];
  const prod = new FrameRing(r).asProducer();
  rig.qos(0, { rxPps: 1000, rxBurstFrames: 10 });
  const f = ethFrame(macOf(0), NOBODY, 64);
  for (let i = 0; i < 300; i++) {
    const s = prod.reserve();
    prod.bytes.set(f, FrameRing.data(s));
    prod.commit(s, 64, 0);
  }
  prod.publish();
  for (let i = 0; i < 10; i++) rig.step(0.0001); // the engine takes `batch` frames per ring per step
  const mid = rig.vif(0);
  assert.equal(mid.rx_frames, 10, 'the burst');
  assert.equal(mid.qos_rx_queued, 128);
  assert.equal(mid.rx_qos_overflow, 300 - 10 - 128);
  for (let t = 0; t < 2000; t++) {
    rig.step(0.1);
    rig.nics[0]!.receive();
    rig.nics[0]!.release();
  }
  const c = rig.vif(0);
  assert.equal(c.rx_frames + c.rx_no_buffer, 10 + 128);
  assert.equal(rig.engineCounters().uplink_rx_frames, 300);
  assert.equal(rig.unaccounted(), 0);
});

test('frames still held for guest RX when the VIF is removed count as rx_qos_flushed', () => {
  const rig = new QosRig(2);
  rig.qos(1, { rxPps: 100, rxBurstFrames: 1 });
  rig.fill(0, macOf(1), 64);
  rig.step(0.01);
  const c = rig.vif(1);
  assert.ok(c.qos_rx_queued > 0);
  rig.engine.removeVif(1);
  const after = rig.vif(1);
  assert.equal(after.rx_qos_flushed, c.qos_rx_queued);
  assert.equal(rig.unaccounted(), 0);
});

test('a priority VIF is served before greedy neighbours, and its greed is bounded (no starvation)', () => {
  const rig = new QosRig(4);
  rig.qos(3, { priority: 1 });
  for (let s = 0; s < 3; s++) rig.qos(s, { weight: 1 });
  // neighbours keep their rings full; the priority VIF sends one frame every 10th iteration
  let firstAfterPing = 0;
  let pings = 0;
  for (let t = 0; t < 1000; t++) {
    for (let s = 0; s < 3; s++) rig.fill(s, NOBODY, 1500);
    const ping = t % 10 === 0;
    if (ping) {
      const f = ethFrame(NOBODY, macOf(3), 64);
      assert.ok(rig.nics[3]!.send(f));
      pings++;
    }
    const at = rig.uplinkOrder.length;
    rig.step(0.01);
    if (ping && rig.uplinkOrder[at] === 3) firstAfterPing++;
  }
  assert.equal(firstAfterPing, pings, 'every priority frame left first in its iteration');
  // now the priority VIF is greedy too: it takes at most `batch` frames per iteration, the others still move
  const before = [0, 1, 2, 3].map((s) => rig.vif(s).tx_frames);
  for (let t = 0; t < 100; t++) {
    for (let s = 0; s < 4; s++) rig.fill(s, NOBODY, 1500);
    rig.step(0.01);
  }
  const d = [0, 1, 2, 3].map((s) => rig.vif(s).tx_frames - before[s]!);
  assert.ok(d[3]! <= 32 * 100, `priority took ${d[3]}`);
  for (let s = 0; s < 3; s++) assert.ok(d[s]! >= 100, `VIF ${s} starved: ${d[s]}`);
});

test('with a capacity, the priority classes together get at most priorityShare of it', () => {
  const rig = new QosRig(2);
  writeQosPort(rig.table, { capacityBps: 80e6, priorityShare: 0.25, quantum: DEFAULT_QUANTUM });
  rig.qos(1, { priority: 3 });
  rig.qos(0, { weight: 1 });
  const before = [0, 1].map((s) => rig.vif(s).tx_bytes);
  for (let t = 0; t < 20_000; t++) {
    rig.fill(0, NOBODY, 1500);
    rig.fill(1, NOBODY, 1500);
    rig.step(0.05); // 1000 fake ms: capacity 10 MB
  }
  const d = [0, 1].map((s) => rig.vif(s).tx_bytes - before[s]!);
  const share = d[1]! / (d[0]! + d[1]!);
  assert.ok(share > 0.24 && share < 0.26, `priority share ${share}`);
});

test('a guarantee is a floor: a low-weight VIF gets its guaranteed rate, the rest is shared by weight', () => {
  const rig = new QosRig(2);
  writeQosPort(rig.table, { capacityBps: 100e6, priorityShare: 0.5, quantum: DEFAULT_QUANTUM });
  rig.qos(0, { weight: 1, minBps: 60e6 });
  rig.qos(1, { weight: 9 });
  const before = [0, 1].map((s) => rig.vif(s).tx_bytes);
  for (let t = 0; t < 20_000; t++) {
    rig.fill(0, NOBODY, 1500);
    rig.fill(1, NOBODY, 1500);
    rig.step(0.05); // 1000 fake ms: 12.5 MB of capacity
  }
  const d = [0, 1].map((s) => rig.vif(s).tx_bytes - before[s]!);
  const total = d[0]! + d[1]!;
  assert.ok(total >= 12.5e6 - 1500 && total <= 12.5e6 + 62_500 + 1500, `total ${total}`);
  // 60 % guaranteed; without the guarantee weight 1 of 10 would give it 10 %
  assert.ok(d[0]! / total >= 0.6 - 0.005, `guaranteed VIF got ${d[0]! / total}`);
  assert.ok(d[0]! / total <= 0.6 + 0.4 * 0.1 + 0.005, `guaranteed VIF got more than its floor plus its weighted share: ${d[0]! / total}`);
});

test('the port gate holds only VIFs that send to the uplink; VIF-to-VIF traffic keeps flowing', () => {
  const rig = new QosRig(3);
  writeQosPort(rig.table, { capacityBps: 8e6, priorityShare: 0.5, quantum: DEFAULT_QUANTUM }); // 1000 B/ms
  rig.qos(0, { weight: 1 });
  let local = 0;
  for (let t = 0; t < 1000; t++) {
    rig.fill(0, NOBODY, 1000); // to the slow uplink
    rig.fill(1, macOf(2), 1000); // to VIF 2 on the same engine
    rig.step(0.1); // 100 fake ms
    local += rig.nics[2]!.receive();
    rig.nics[2]!.release();
  }
  const up = rig.vif(0).tx_bytes;
  assert.ok(up <= 100 * 1000 + 16384 + 1000, `uplink got ${up}`);
  assert.ok(local > 5 * up / 1000, `local frames ${local} vs uplink frames ${up / 1000}`);
  assert.equal(rig.vif(2).rx_no_buffer + local, rig.vif(1).tx_frames);
});

test('switching QoS off places frames still queued for guest RX and hands VIFs back', () => {
  const rig = new QosRig(2);
  rig.qos(1, { rxPps: 100, rxBurstFrames: 1 });
  rig.fill(0, macOf(1), 64);
  rig.step(0.01);
  const queued = rig.vif(1).qos_rx_queued;
  assert.ok(queued > 10);
  writeQosRow(rig.table, 1, emptyQosRow());
  rig.step(0.01);
  const c = rig.vif(1);
  assert.equal(c.rx_frames + c.rx_no_buffer, rig.vif(0).tx_frames);
  assert.equal(c.rx_qos_overflow + c.rx_qos_flushed, 0);
  assert.equal(rig.unaccounted(), 0);
  rig.nics[1]!.receive();
  rig.nics[1]!.release();
  rig.fill(0, macOf(1), 64);
  rig.step(0.01);
  assert.ok(rig.vif(1).rx_frames > c.rx_frames, 'frames flow after QoS was switched off');
});

test('the QoS table: a row caught mid-write is not read; a stable row is', async () => {
  const { readQosRow, rowOffset, Q } = await import('../../src/layout/qos.js');
  const t = createQosTable(2);
  writeQosRow(t, 1, { ...emptyQosRow(), enabled: true, weight: 7, txBps: 5e6 });
  const i = new Int32Array(t);
  const f = new Float64Array(t);
  const out = emptyQosRow();
  assert.ok(readQosRow(i, f, 1, out) >= 0);
  assert.equal(out.weight, 7);
  assert.equal(out.txBps, 5e6);
  assert.equal(out.enabled, true);
  Atomics.add(i, (rowOffset(1) + Q.SEQ) >> 2, 1); // a writer is in the middle of it
  assert.equal(readQosRow(i, f, 1, out), -1);
});

test('without a capacity, weights share the engine itself: bytes per iteration follow the weights', () => {
  const rig = new QosRig(2);
  rig.qos(0, { weight: 1 });
  rig.qos(1, { weight: 3 });
  const before = [0, 1].map((s) => rig.vif(s).tx_bytes);
  for (let t = 0; t < 1000; t++) {
    rig.fill(0, NOBODY, 1500);
    rig.fill(1, NOBODY, 1500);
    rig.step(0.001);
  }
  const d = [0, 1].map((s) => rig.vif(s).tx_bytes - before[s]!);
  assert.ok(Math.abs(d[1]! / d[0]! - 3) < 0.01, `ratio ${d[1]! / d[0]!}`);
  assert.ok(d[0]! >= 1000 * DEFAULT_QUANTUM - 1500, `${d[0]}`);
});

/** Two engines of one device sharing one QoS table and one (shaped) uplink; one VIF on each. */
class TwoEngines {
  readonly table = createQosTable(MAX, 2);
  readonly counters = createCounters(MAX, 2);
  readonly f64 = new Float64Array(this.counters);
  readonly engines: Engine[] = [];
  readonly uplinks: FrameRing[] = [];
  readonly nics: VirtioNetDriver[] = [];
  now = 0;
  constructor() {
    const fdb = [0, 1].map((s) => ({ segment: 0, mac: macOf(s), slot: s }));
    for (let e = 0; e < 2; e++) {
      const doorbell = createWakePage(MAX);
      const eng = new Engine({
        index: e, engines: 2, maxVifs: MAX, doorbell, control: createWakePage(32), counters: this.counters,
        irqMode: 'direct', spinUs: 0, sweepMs: 100, batch: 32, qos: this.table,
      });
      const r = createFrameRing(1024, 9018);
      eng.sw.toUplink = new FrameRing(r).asProducer();
      this.uplinks.push(new FrameRing(r).asConsumer());
      const sab = createVifMemory(e, 256, 1500, macOf(e));
      eng.addVif({
        slot: e, sab, queueSize: 256, mac: macOf(e), mtu: 1500, segment: 0, linkUp: true, promiscuous: false,
        multicast: [], coalesce: { frames: 1, usecs: 0 }, deviceFeatures: DEVICE_FEATURES,
      });
      eng.setFdb(fdb, [0, 1]);
      this.nics.push(new VirtioNetDriver({ vifId: `v${e}`, vif: sab, doorbell }));
      this.engines.push(eng);
      eng.step(0);
    }
  }
  run(ms: number, dt: number): number[] {
    const before = [0, 1].map((s) => readVifCounters(this.f64, s).tx_bytes);
    const f = ethFrame(NOBODY, macOf(0), 1500);
    const g = ethFrame(NOBODY, macOf(1), 1500);
    for (let t = 0; t < ms / dt; t++) {
      for (const [i, fr] of [[0, f], [1, g]] as const) {
        const nic = this.nics[i]!;
        for (let slot = nic.reserveTx(); slot >= 0; slot = nic.reserveTx()) {
          nic.bytes.set(fr, nic.txOffset(slot));
          nic.commitTx(slot, 1500);
        }
        nic.flush();
      }
      this.now += dt;
      for (let e = 0; e < 2; e++) {
        this.engines[e]!.step(this.now);
        const u = this.uplinks[e]!;
        for (let s = u.peek(); s >= 0; s = u.peek()) u.advance();
        u.release();
      }
    }
    return [0, 1].map((s) => readVifCounters(this.f64, s).tx_bytes - before[s]!);
  }
}

test('two engines share one uplink by the weights of their VIFs, and each gets its guarantees', () => {
  const w = new TwoEngines();
  writeQosPort(w.table, { capacityBps: 400e6, priorityShare: 0.5, quantum: DEFAULT_QUANTUM });
  writeQosRow(w.table, 0, { ...emptyQosRow(), enabled: true, weight: 1 });
  writeQosRow(w.table, 1, { ...emptyQosRow(), enabled: true, weight: 3 });
  w.run(50, 0.05); // settle
  const d = w.run(1000, 0.05); // capacity: 50 MB in 1 s
  const total = d[0]! + d[1]!;
  assert.ok(Math.abs(d[0]! / total - 0.25) < 0.01, `engine 0's VIF got ${d[0]! / total}`);
  assert.ok(total <= 50e6 * 1.01 && total >= 50e6 * 0.98, `total ${total}`);
  // a guarantee on the light VIF: 60 % of the capacity, whatever the weights say
  writeQosRow(w.table, 0, { ...emptyQosRow(), enabled: true, weight: 1, minBps: 240e6 });
  w.run(50, 0.05);
  const g = w.run(1000, 0.05);
  const t2 = g[0]! + g[1]!;
  assert.ok(g[0]! / t2 >= 0.6 - 0.01, `guaranteed VIF got ${g[0]! / t2}`);
  assert.ok(t2 <= 50e6 * 1.01, `total ${t2}`);
  // a rate-limited VIF on one engine claims its limit; the other engine's VIF gets the rest
  writeQosRow(w.table, 0, { ...emptyQosRow(), enabled: true, txBps: 100e6 });
  w.run(50, 0.05);
  const l = w.run(1000, 0.05);
  assert.ok(Math.abs(l[0]! - 12.5e6) <= 12.5e6 * 0.01, `limited VIF ${l[0]}`);
  assert.ok(l[1]! >= 37.5e6 * 0.98 && l[0]! + l[1]! <= 50e6 * 1.01, `the other VIF ${l[1]}`);
});
