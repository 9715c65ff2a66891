/**
 * VirtioNetDriver.waitTxSync: a sender with a full transmit ring asks for a transmit-completion
 * interrupt (the transmit queue's used_event, virtio 1.2, 2.7.10) and the device raises one once
 * enough buffers completed; with room it returns at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rig, ethFrame } from '../helpers/mock-driver.js';
import { VirtioNetDriver } from '../../src/guest/driver.js';
import { H, i32 } from '../../src/layout/vif.js';

test('waitTxSync arms a transmit-completion interrupt that the device raises', () => {
  const rig = new Rig();
  const sab = rig.addVif(0, '02:00:00:00:00:01', { queueSize: 16 });
  const g = new VirtioNetDriver({ vifId: 'g', vif: sab, doorbell: rig.doorbell });
  rig.step(2);
  const f = ethFrame('02:be:ef:00:00:01', '02:00:00:00:00:01', 64, 1);
  let n = 0;
  while (g.send(f)) n++;
  assert.equal(n, 16, 'the ring is full');
  const header = new Int32Array(sab, 0, 1024);
  const irqBefore = Atomics.load(header, i32(H.IRQ));
  // Nothing completed yet: the wait times out (1 ms), having armed used_event for 4 completions.
  g.waitTxSync(1, 4);
  assert.equal(g.reserveTx(), -1, 'still full');
  rig.step(2); // the device takes all 16 and publishes them
  assert.equal(Atomics.load(header, i32(H.IRQ)), irqBefore + 1, 'the device interrupted for the completions');
  g.waitTxSync(1000, 4); // returns at once: room
  assert.notEqual(g.reserveTx(), -1);
  assert.equal(rig.vifCounters(0).tx_frames, 16);
});

test('without waitTxSync a full ring gets no transmit interrupts (EVENT_IDX suppression)', () => {
  const rig = new Rig();
  const sab = rig.addVif(0, '02:00:00:00:00:01', { queueSize: 16 });
  const g = new VirtioNetDriver({ vifId: 'g', vif: sab, doorbell: rig.doorbell });
  rig.step(2);
  const header = new Int32Array(sab, 0, 1024);
  const f = ethFrame('02:be:ef:00:00:01', '02:00:00:00:00:01', 64, 1);
  // The zeroed ring's used_event (0) asks for one interrupt at the first completion; after that
  // a sender that never arms gets none, however many buffers complete.
  while (g.send(f));
  rig.step(2);
  const irqBefore = Atomics.load(header, i32(H.IRQ));
  for (let round = 0; round < 3; round++) {
    let n = 0;
    while (g.send(f)) n++;
    assert.equal(n, 16);
    rig.step(2);
  }
  assert.equal(Atomics.load(header, i32(H.IRQ)), irqBefore);
  assert.equal(rig.vifCounters(0).tx_frames, 64);
});
