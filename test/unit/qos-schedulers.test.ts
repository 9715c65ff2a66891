/**
 * The QoS schedulers on their own (device/qos/): token bucket, deficit round robin and the
 * priority bound, driven with a fake clock and fake flows. Exact arithmetic, no timing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../src/device/qos/token-bucket.js';
import { Drr, MORE, EMPTY, HELD, GATED, type DrrServer } from '../../src/device/qos/drr.js';
import { PriorityBound } from '../../src/device/qos/priority.js';

/** Send frames of `len` bytes through a bucket for `ms` fake milliseconds in `dt` steps, always backlogged. */
function drive(b: TokenBucket, ms: number, dt: number, len: (i: number) => number, t0 = 0): { bytes: number; frames: number; now: number } {
  let bytes = 0;
  let frames = 0;
  let now = t0;
  for (; now < t0 + ms; now += dt) {
    b.refill(now);
    while (b.conforms()) {
      const l = len(frames);
      b.charge(l, 1);
      bytes += l;
      frames++;
    }
  }
  return { bytes, frames, now };
}

test('token bucket: bytes over T stay within burst + rate x T + one frame, and above rate x T - one frame', () => {
  const b = new TokenBucket();
  b.set(100e6, 0, 0, 0, 0); // 100 Mbit/s = 12 500 B/ms, default burst 5 ms = 62 500 B
  assert.equal(b.burstBytes, 62_500);
  const sizes = [60, 1514, 700, 9018, 64, 1500];
  const r = drive(b, 5000, 0.1, (i) => sizes[i % sizes.length]!);
  const rateT = 12_500 * 5000;
  assert.ok(r.bytes <= 62_500 + rateT + 9018, `${r.bytes}`);
  assert.ok(r.bytes >= rateT - 9018, `${r.bytes}`);
});

test('token bucket: frames per second limit is exact to one frame plus the burst', () => {
  const b = new TokenBucket();
  b.set(0, 0, 10_000, 50, 0); // 10 kpps, burst 50
  const r = drive(b, 5000, 0.05, () => 64);
  assert.ok(r.frames >= 50_000 && r.frames <= 50_000 + 50 + 1, `${r.frames}`);
  assert.ok(b.limited);
});

test('token bucket: an idle bucket allows exactly its burst at once, then the rate', () => {
  const b = new TokenBucket();
  b.set(8e6, 10_000, 0, 0, 0); // 1000 B/ms, burst 10 000 B
  b.refill(1000); // long idle: capped at the burst
  let sent = 0;
  while (b.conforms()) {
    b.charge(1000, 1);
    sent += 1000;
  }
  assert.equal(sent, 10_000);
  assert.equal(b.waitMs() > 0, true);
  b.refill(1000.5); // half a ms later the balance is 500 B > 0: one more frame may start
  assert.ok(b.conforms());
  b.charge(1000, 1);
  assert.ok(!b.conforms());
  assert.ok(Math.abs(b.waitMs() - 0.5) < 1e-3);
});

test('token bucket: a limit change mid-run keeps the debt and takes effect at once', () => {
  const b = new TokenBucket();
  b.set(8e6, 1000, 0, 0, 0); // 1000 B/ms
  b.charge(5000, 5); // 4000 B in debt
  b.set(16e6, 1000, 0, 0, 0); // 2000 B/ms: debt kept
  assert.equal(b.bytes, -4000);
  b.refill(2); // +4000
  assert.ok(!b.conforms());
  b.refill(2.001);
  assert.ok(b.conforms());
  const r = drive(b, 1000, 0.1, () => 500, 3);
  assert.ok(Math.abs(r.bytes - 2_000_000) <= 1000 + 500, `${r.bytes}`);
  b.set(0, 0, 0, 0, r.now); // unlimited
  assert.ok(b.conforms() && b.byteBudget() === Infinity && !b.limited);
});

test('token bucket: a backlogged sender catches up a device stall (up to catchUpMs); an idle one saves only its burst', () => {
  const b = new TokenBucket();
  b.set(8e6, 2000, 0, 0, 0); // 1000 B/ms, burst 2000 B
  b.charge(2000, 2); // balance 0
  b.refill(50, true); // the engine did not run for 50 ms while frames waited
  assert.equal(b.bytes, 50_000);
  b.charge(50_000, 50);
  b.refill(250, true); // a 200 ms stall: only catchUpMs (100 ms) is paid back
  assert.equal(b.bytes, 100_000);
  b.charge(100_000, 100);
  b.refill(300); // idle for 50 ms: the burst caps it
  assert.equal(b.bytes, 2000);
  b.refill(300, true);
  b.refill(300); // saved catch-up beyond the burst is not kept once the sender is idle
  assert.equal(b.bytes, 2000);
  // long run: a backlogged sender served in 30 ms gaps still gets the exact rate
  let sent = 0;
  for (let now = 300; now < 10_300; now += 30) {
    b.refill(now, true);
    while (b.conforms()) {
      b.charge(1500, 1);
      sent += 1500;
    }
  }
  assert.ok(Math.abs(sent - (2000 + 9_990 * 1000)) <= 1500, `${sent}`);
});

/** Fake flows for DRR: each always has frames of a fixed size; a shared link gate with a capacity per pass. */
class FakeLink implements DrrServer {
  outcome = MORE;
  served: number[];
  linkLeft = 0;
  sizes: number[];
  gatedFlows: Set<number>;
  empty = new Set<number>();
  visits = 0;
  constructor(sizes: number[], gated: number[] = []) {
    this.sizes = sizes;
    this.served = sizes.map(() => 0);
    this.gatedFlows = new Set(gated.length ? gated : sizes.map((_, i) => i));
  }
  gated(f: number): boolean {
    return this.gatedFlows.has(f) && this.linkLeft <= 0;
  }
  beforeVisit(): void {
    this.visits++;
  }
  serve(f: number, budget: number): number {
    if (this.empty.has(f)) {
      this.outcome = EMPTY;
      return 0;
    }
    let took = 0;
    const g = this.gatedFlows.has(f);
    while (took < budget && (!g || this.linkLeft > 0)) {
      took += this.sizes[f]!;
      if (g) this.linkLeft -= this.sizes[f]!;
    }
    this.served[f]! += took;
    this.outcome = g && this.linkLeft <= 0 ? GATED : MORE;
    return took;
  }
}

test('DRR: four saturating flows with weights 1:2:3:4 share a link exactly 10/20/30/40 %', () => {
  const drr = new Drr(8, 1518);
  const link = new FakeLink([1500, 1500, 1500, 1500]);
  [1, 2, 3, 4].forEach((w, f) => {
    drr.weight[f] = w;
    drr.add(f);
  });
  for (let round = 0; round < 20_000; round++) {
    link.linkLeft += 3000; // the link drains 3000 B per pass: far less than the flows offer
    drr.pass(link);
  }
  const total = link.served.reduce((a, b) => a + b, 0);
  const shares = link.served.map((s) => s / total);
  [0.1, 0.2, 0.3, 0.4].forEach((want, f) => assert.ok(Math.abs(shares[f]! - want) < 0.001, `flow ${f}: ${shares[f]}`));
  // Exact to within one quantum plus one frame per flow.
  const perWeight = total / 10;
  [1, 2, 3, 4].forEach((w, f) => assert.ok(Math.abs(link.served[f]! - w * perWeight) <= 4 * 1518 + 1500, `flow ${f}`));
});

test('DRR: equal weights give equal bytes whatever the frame sizes (64 B vs 1500 B flows)', () => {
  const drr = new Drr(4, 1518);
  const link = new FakeLink([64, 1500, 700]);
  [0, 1, 2].forEach((f) => drr.add(f));
  for (let round = 0; round < 10_000; round++) {
    link.linkLeft += 2000;
    drr.pass(link);
  }
  const [a, b, c] = link.served;
  assert.ok(Math.abs(a! - b!) <= 2 * 1518 && Math.abs(b! - c!) <= 2 * 1518, `${link.served}`);
});

test('DRR: without a gate every flow earns weight x quantum per pass (the engine is the bottleneck)', () => {
  const drr = new Drr(4, 1000);
  const link = new FakeLink([100, 100], []);
  link.gatedFlows = new Set();
  drr.weight[0] = 1;
  drr.weight[1] = 3;
  drr.add(0);
  drr.add(1);
  for (let i = 0; i < 100; i++) drr.pass(link);
  assert.deepEqual(link.served, [100_000, 300_000]);
});

test('DRR: a weight change mid-run changes the shares from then on', () => {
  const drr = new Drr(4, 1518);
  const link = new FakeLink([1500, 1500]);
  drr.add(0);
  drr.add(1);
  for (let i = 0; i < 5000; i++) {
    link.linkLeft += 3000;
    drr.pass(link);
  }
  assert.ok(Math.abs(link.served[0]! - link.served[1]!) <= 2 * 1518);
  const before = [...link.served];
  drr.weight[1] = 3;
  for (let i = 0; i < 20_000; i++) {
    link.linkLeft += 3000;
    drr.pass(link);
  }
  const d0 = link.served[0]! - before[0]!;
  const d1 = link.served[1]! - before[1]!;
  assert.ok(Math.abs(d1 / (d0 + d1) - 0.75) < 0.001, `${d1 / (d0 + d1)}`);
});

test('DRR: gated flows are skipped while others are served; an empty or held flow leaves with no credit', () => {
  const drr = new Drr(4, 1000);
  const link = new FakeLink([500, 500, 500], [0, 1]); // flow 2 does not use the gated link
  [0, 1, 2].forEach((f) => drr.add(f));
  link.linkLeft = 0;
  drr.pass(link);
  assert.deepEqual(link.served, [0, 0, 1000]);
  link.empty.add(2);
  drr.pass(link);
  assert.equal(drr.count, 2);
  assert.equal(drr.has(2), false);
  assert.equal(drr.deficit[2], 0);
  const held = new (class extends FakeLink {
    override serve(): number {
      this.outcome = HELD;
      return 0;
    }
  })([500, 500], []);
  held.gatedFlows = new Set();
  drr.pass(held);
  assert.equal(drr.count, 0);
});

test('DRR: the gate hands out capacity in rotation order across passes (no flow starts every pass first)', () => {
  const drr = new Drr(4, 1500);
  const link = new FakeLink([1500, 1500, 1500]);
  [0, 1, 2].forEach((f) => drr.add(f));
  const order: number[] = [];
  const orig = link.serve.bind(link);
  link.serve = (f, b) => {
    order.push(f);
    return orig(f, b);
  };
  for (let i = 0; i < 6; i++) {
    link.linkLeft += 1500;
    drr.pass(link);
  }
  assert.deepEqual(order, [0, 1, 2, 0, 1, 2]);
});

test('priority bound: at most framesPerRound frames per iteration, and at most share x capacity over time', () => {
  const p = new PriorityBound(32);
  p.setShare(0, 0.5, 0); // no capacity: only the per-iteration bound
  p.beginRound(0);
  assert.equal(p.frames(), 32);
  p.charge(30, 30 * 1500);
  assert.equal(p.frames(), 2);
  p.charge(2, 3000);
  assert.equal(p.frames(), 0);
  p.beginRound(1);
  assert.equal(p.frames(), 32);

  const q = new PriorityBound(1_000_000);
  q.setShare(80e6, 0.25, 0); // 20 Mbit/s = 2500 B/ms for the priority classes
  let bytes = 0;
  for (let now = 0; now < 1000; now += 0.1) {
    q.beginRound(now);
    while (q.frames() > 0) {
      q.charge(1, 1000);
      bytes += 1000;
    }
  }
  const burst = q.share.burstBytes;
  assert.ok(bytes <= 2500 * 1000 + burst + 1000 && bytes >= 2500 * 1000 - 1000, `${bytes}`);
});

test('port share: guarantees first, the rest by weight; no demand splits evenly; a trickle floor', async () => {
  const { portShare } = await import('../../src/device/qos/port-share.js');
  assert.equal(portShare(400, 2, 1, 0, 4, 0), 100);
  assert.equal(portShare(400, 2, 3, 0, 4, 0), 300);
  assert.equal(portShare(400, 2, 1, 200, 4, 200), 250); // 200 + 200 x 1/4
  assert.equal(portShare(400, 2, 0, 0, 0, 0), 200);
  assert.equal(portShare(1000, 2, 0, 0, 5, 0), 1); // 0.1 % trickle
});

test('hold queue: FIFO, bounded, frames kept at 4 mod 8 like everywhere in svnic', async () => {
  const { HoldQueue } = await import('../../src/device/qos/hold-queue.js');
  const q = new HoldQueue(4, 1518);
  const src = new Uint8Array(64 + 1600);
  const src32 = new Int32Array(src.buffer);
  for (let i = 0; i < 4; i++) {
    src[12] = i;
    assert.ok(q.push(src, src32, 12, 60 + i));
  }
  assert.equal(q.push(src, src32, 12, 60), false, 'full');
  for (let i = 0; i < 4; i++) {
    assert.equal(q.frontOffset() % 8, 4);
    assert.equal(q.bytes[q.frontOffset()], i);
    assert.equal(q.frontLength(), 60 + i);
    q.pop();
  }
  assert.equal(q.length, 0);
  assert.equal(q.push(new Uint8Array(2000), new Int32Array(500), 0, 1600), false, 'larger than a slot');
  assert.equal(q.length, 0);
});

test('port share: reservations above the capacity are scaled down to it', async () => {
  const { portShare } = await import('../../src/device/qos/port-share.js');
  assert.equal(portShare(400, 2, 1, 300, 2, 600), 200);
  assert.equal(portShare(400, 2, 1, 100, 1, 100), 400);
});
