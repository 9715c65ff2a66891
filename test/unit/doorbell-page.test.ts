/**
 * The doorbell page is shared by every guest on an engine (layout/doorbell.ts). What a hostile
 * guest writes there must cost at most a spurious check or a bounded delay, never a crash, a
 * stalled neighbour or a blocked control plane.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rig, ethFrame } from '../helpers/mock-driver.js';
import { VirtioNetDriver } from '../../src/guest/driver.js';
import { W } from '../../src/layout/doorbell.js';

const MAC_A = '02:00:00:00:00:0a';
const MAC_B = '02:00:00:00:00:0b';

function pair() {
  const rig = new Rig({ maxVifs: 40 }); // two bitmap words: SUMMARY bits 2..31 name no word
  const a = new VirtioNetDriver({ vifId: 'a', vif: rig.addVif(0, MAC_A), doorbell: rig.doorbell });
  const b = new VirtioNetDriver({ vifId: 'b', vif: rig.addVif(33, MAC_B), doorbell: rig.doorbell });
  rig.step();
  return { rig, a, b, db: new Int32Array(rig.doorbell) };
}

test('summary bits that name no bitmap word are ignored, not a crash', () => {
  const { rig, a, b, db } = pair();
  Atomics.or(db, W.SUMMARY, -1 << 2);
  assert.doesNotThrow(() => rig.step());
  assert.ok(a.send(ethFrame(MAC_B, MAC_A)));
  rig.step();
  assert.equal(b.receive(), 1);
});

test('a kick another guest cleared is found by the sweep', () => {
  const { rig, a, b, db } = pair();
  assert.ok(a.send(ethFrame(MAC_B, MAC_A)));
  Atomics.store(db, W.SUMMARY, 0); // a hostile neighbour wipes the doorbells
  Atomics.store(db, W.BITMAP, 0);
  rig.step();
  assert.equal(b.receive(), 0, 'the kick was lost');
  rig.engine.sweep(); // run() does this every sweepMs, busy or idle
  rig.step();
  assert.equal(b.receive(), 1);
});

test('the CONTROL word of the shared page does not drive the engine', () => {
  const { rig, db } = pair();
  let drained = 0;
  rig.engine.onControl = () => drained++;
  Atomics.store(db, W.CONTROL, 1);
  rig.step();
  assert.equal(drained, 0, 'control messages are flagged on the engine\'s private page only');
});
