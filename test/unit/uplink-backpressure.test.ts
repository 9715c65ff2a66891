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
