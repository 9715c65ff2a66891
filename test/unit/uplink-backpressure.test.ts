/**
 * Uplink backpressure: an engine whose uplink ring cannot take a batch leaves guest frames in their
 * transmit queues (counted in uplink_tx_waits) instead of taking them only to drop them; once the
 * ring drains, the frames go out, and nothing is lost or counted as dropped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rig, ethFrame } from '../helpers/mock-driver.js';
import { VirtioNetDriver } from '../../src/guest/driver.js';
import { createFrameRing, FrameRing } from '../../src/layout/frame-ring.js';

test('a full uplink ring holds guest frames in their queue; none is dropped', () => {
  const rig = new Rig({ batch: 8 });
  const g = new VirtioNetDriver({ vifId: 'g', vif: rig.addVif(0, '02:00:00:00:00:01', { queueSize: 64 }), doorbell: rig.doorbell });
  const ring = createFrameRing(16, 1518);
  rig.engine.sw.toUplink = new FrameRing(ring).asProducer();
  const consumer = new FrameRing(ring).asConsumer();
  rig.step(2);
  const frames = Array.from({ length: 40 }, (_, i) => ethFrame('02:be:ef:00:00:01', '02:00:00:00:00:01', 64, i));
  assert.equal(g.sendMany(frames), 40);
  rig.step(10);
  // 16 slots take two batches of 8; the rest waits in the guest's ring.
  assert.equal(consumer.depth(), 16);
  assert.equal(rig.engineCounters().uplink_tx_full, 0, 'nothing taken only to be dropped');
  assert.ok(rig.engineCounters().uplink_tx_waits > 0);
  assert.equal(rig.vifCounters(0).tx_frames, 16);
  let got = 0;
  for (let round = 0; round < 20 && got < 40; round++) {
    for (let s = consumer.peek(); s >= 0; s = consumer.peek()) {
      const o = FrameRing.data(s) + 14;
      const b = consumer.bytes;
      assert.equal(((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0, got, 'in order');
      consumer.advance();
      got++;
    }
    consumer.release();
    rig.step(2);
  }
  assert.equal(got, 40, 'every frame went out once the ring drained');
  assert.equal(rig.vifCounters(0).tx_frames, 40);
  assert.equal(rig.engineCounters().uplink_tx_full, 0);
  assert.equal(rig.engineCounters().uplink_tx_frames, 40);
  assert.equal(rig.unaccounted(), 0);
});

test('under uplink backpressure every VIF gets its turn (no starvation by list order)', () => {
  const rig = new Rig({ batch: 4 });
  const macs = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03'];
  const gs = macs.map((m, i) => new VirtioNetDriver({ vifId: `g${i}`, vif: rig.addVif(i, m, { queueSize: 64 }), doorbell: rig.doorbell }));
  const ring = createFrameRing(8, 1518);
  rig.engine.sw.toUplink = new FrameRing(ring).asProducer();
  const consumer = new FrameRing(ring).asConsumer();
  rig.step(2);
  gs.forEach((g, i) => assert.equal(g.sendMany(Array.from({ length: 60 }, (_, k) => ethFrame('02:be:ef:00:00:01', macs[i]!, 64, k))), 60));
  // The consumer takes 4 frames per round: the uplink is the bottleneck throughout.
  for (let round = 0; round < 30; round++) {
    rig.step(1);
    for (let k = 0; k < 4 && consumer.peek() >= 0; k++) consumer.advance();
    consumer.release();
  }
  const sent = macs.map((_, i) => rig.vifCounters(i).tx_frames);
  for (const n of sent) assert.ok(n >= 20, `every VIF was served: ${sent.join(', ')}`);
  assert.equal(rig.engineCounters().uplink_tx_full, 0);
});

test('an uplink that stays full (its consumer hangs) stops holding up VIF-to-VIF traffic', () => {
  const rig = new Rig({ batch: 4 });
  const A = '02:00:00:00:00:01';
  const B = '02:00:00:00:00:02';
  const a = new VirtioNetDriver({ vifId: 'a', vif: rig.addVif(0, A, { queueSize: 64 }), doorbell: rig.doorbell });
  const b = new VirtioNetDriver({ vifId: 'b', vif: rig.addVif(1, B, { queueSize: 64 }), doorbell: rig.doorbell });
  rig.engine.sw.toUplink = new FrameRing(createFrameRing(8, 1518)).asProducer(); // nobody consumes it
  rig.step(2);
  assert.equal(a.sendMany(Array.from({ length: 20 }, (_, k) => ethFrame('02:be:ef:00:00:01', A, 64, k))), 20);
  rig.step(5); // 1 ms per step: the ring fills, then a's frames wait
  const f = ethFrame(B, A, 64, 99);
  assert.equal(a.send(f), true);
  rig.step(5);
  assert.equal(b.receive(), 0, 'while the uplink holds the engine back, a -> b waits too');
  rig.step(60); // past UPLINK_STALL_MS: the uplink is treated as stalled
  assert.equal(b.receive(), 1, 'a -> b flows again');
  assert.deepEqual(b.frame(0), f);
  b.release();
  const e = rig.engineCounters();
  assert.equal(e.uplink_tx_frames, 8, 'what fitted in the ring');
  assert.equal(e.uplink_tx_full, 12, "the rest of a's uplink frames are dropped and counted");
  assert.equal(rig.vifCounters(0).tx_frames, 21);
  assert.equal(rig.unaccounted(), 0);
});
