/**
 * The driver domain's learning bridge: the FDB on its own (learning, moves, ageing, static
 * entries, a full table) and the bridge's forwarding in the in-process rig (flooding of broadcast
 * and unknown unicast, learning from the NIC, ageing back to flooding, no frame back out of its
 * ingress port), each with the conservation law checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fdb, NO_PORT } from '../../src/baseline/fdb.js';
import { parseMac } from '../../src/device/mac-table.js';
import { VirtioNetDriver } from '../../src/guest/driver.js';
import { DdRig, PEER_MAC } from '../helpers/dd-rig.js';
import { ethFrame } from '../helpers/mock-driver.js';

const mac = (s: string): Uint8Array => parseMac(s)!;
const M1 = '02:00:00:00:00:01';
const M2 = '02:00:00:00:00:02';

test('fdb: learns, moves, ages out and sweeps', () => {
  const f = new Fdb(16, 1000);
  assert.equal(f.lookup(mac(M1), 0, 0), NO_PORT);
  f.learn(mac(M1), 0, 3, 0);
  assert.equal(f.lookup(mac(M1), 0, 500), 3);
  f.learn(mac(M1), 0, 4, 600);
  assert.equal(f.lookup(mac(M1), 0, 700), 4);
  assert.equal(f.moved, 1);
  assert.equal(f.lookup(mac(M1), 0, 1601), NO_PORT, 'aged out after ageMs without traffic');
  assert.equal(f.size, 1, 'still in the table until a sweep');
  f.sweep(1601);
  assert.equal(f.size, 0);
  assert.equal(f.aged, 1);
});

test('fdb: static entries are never learnt over nor aged', () => {
  const f = new Fdb(16, 1000);
  f.addStatic(mac(M1), 1);
  f.learn(mac(M1), 0, 0, 5);
  assert.equal(f.staticConflicts, 1);
  f.sweep(1e9);
  assert.equal(f.lookup(mac(M1), 0, 1e9), 1);
  f.learn(mac(M2), 0, 1, 0);
  f.removePort(1, 0);
  assert.equal(f.lookup(mac(M1), 0, 0), NO_PORT, 'removing a port forgets its entries');
  assert.equal(f.lookup(mac(M2), 0, 0), NO_PORT);
});

test('fdb: a full table learns nothing more and says so', () => {
  const f = new Fdb(4, 1000);
  for (let i = 0; i < 6; i++) f.learn(mac(`02:00:00:00:01:0${i}`), 0, 0, 0);
  assert.equal(f.size, 4);
  assert.equal(f.full, 2);
  assert.equal(f.lookup(mac('02:00:00:00:01:05'), 0, 0), NO_PORT);
  assert.equal(f.lookup(mac('02:00:00:00:01:03'), 0, 0), 0);
});

function twoNetifs(r: DdRig): [VirtioNetDriver, VirtioNetDriver] {
  const a = new VirtioNetDriver({ vifId: 'a', vif: r.addNetif(0, M1), doorbell: r.evtchn });
  const b = new VirtioNetDriver({ vifId: 'b', vif: r.addNetif(1, M2), doorbell: r.evtchn });
  r.step(3);
  return [a, b];
}

test('bridge: unknown unicast is flooded until the destination is learnt, then forwarded', () => {
  const r = new DdRig({ fdbAgeMs: 50 });
  const [a, b] = twoNetifs(r);
  // A -> peer host before the bridge has heard of it: flooded to B and to the NIC.
  assert.equal(a.send(ethFrame(PEER_MAC, M1, 60, 1)), true);
  r.step(3);
  assert.equal(b.receive(), 1, 'B got the flooded copy');
  b.release();
  assert.equal(r.peer.receive(), 1);
  r.peer.release();
  assert.equal(r.bridge().flood_unknown, 1);
  assert.equal(r.dd().flood_copies, 1);
  // The peer host answers: the bridge learns it on the NIC port; A -> peer is now unicast.
  assert.equal(r.peer.send(ethFrame(M1, PEER_MAC, 60, 2)), true);
  r.step(3);
  assert.equal(a.receive(), 1);
  a.release();
  assert.equal(b.receive(), 0, 'a known destination is not flooded');
  assert.equal(a.send(ethFrame(PEER_MAC, M1, 60, 3)), true);
  r.step(3);
  assert.equal(b.receive(), 0);
  assert.equal(r.peer.receive(), 1);
  r.peer.release();
  assert.equal(r.bridge().fdb_learned, 1);
  // Silence longer than the ageing time: the entry ages out and frames are flooded again.
  r.now += 100;
  r.loop.sweep(r.now + 2000);
  assert.equal(a.send(ethFrame(PEER_MAC, M1, 60, 4)), true);
  r.step(3);
  assert.equal(b.receive(), 1, 'flooded again after ageing');
  b.release();
  assert.equal(r.bridge().fdb_aged, 1);
  assert.equal(r.unaccounted(), 0);
  assert.equal(r.rig.unaccounted(), 0);
});

test('bridge: broadcast from a netif reaches every other netif and the NIC, never its sender', () => {
  const r = new DdRig();
  const [a, b] = twoNetifs(r);
  assert.equal(a.send(ethFrame('ff:ff:ff:ff:ff:ff', M1, 60, 1)), true);
  r.step(3);
  assert.equal(a.receive(), 0);
  assert.equal(b.receive(), 1);
  assert.equal(r.peer.receive(), 1);
  assert.equal(r.dd().uplink_tx_frames, 1);
  assert.equal(r.unaccounted(), 0);
});

test('bridge: a frame from the NIC for a MAC on the NIC side is filtered (never sent back), counted', () => {
  const r = new DdRig();
  const [a, b] = twoNetifs(r);
  // A second host on the device's side; the NIC (promiscuous) sees its frames to the peer host.
  const other = '02:00:00:00:ee:02';
  const o = new VirtioNetDriver({ vifId: 'o', vif: r.rig.addVif(2, other, { queueSize: 16 }), doorbell: r.rig.doorbell });
  r.step(3);
  assert.equal(r.peer.send(ethFrame('ff:ff:ff:ff:ff:ff', PEER_MAC, 60, 1)), true);
  r.step(3);
  for (const d of [a, b, o]) {
    assert.equal(d.receive(), 1);
    d.release();
  }
  const before = r.dd().no_receiver;
  assert.equal(o.send(ethFrame(PEER_MAC, other, 60, 2)), true);
  r.step(3);
  assert.equal(r.peer.receive(), 1, 'the device delivered it to the peer host');
  assert.equal(r.dd().uplink_rx_frames >= 2, true, 'the NIC saw it too');
  assert.equal(r.dd().no_receiver, before + 1, 'the bridge filtered it: its destination is on the NIC side');
  assert.equal(a.receive() + b.receive(), 0);
  assert.equal(r.unaccounted(), 0);
  assert.equal(r.rig.unaccounted(), 0);
});

test('bridge: while the NIC is full, every netif gets its turn (no starvation by list order)', () => {
  const r = new DdRig({ nicQueueSize: 8 });
  const macs = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03'];
  const ds = macs.map((m, i) => new VirtioNetDriver({ vifId: `n${i}`, vif: r.addNetif(i, m, 64), doorbell: r.evtchn }));
  r.step(3);
  assert.equal(r.peer.send(ethFrame('ff:ff:ff:ff:ff:ff', PEER_MAC, 60, 0)), true);
  r.step(3);
  ds.forEach((d, i) => {
    d.receive();
    d.release();
    assert.equal(d.sendMany(Array.from({ length: 60 }, (_, k) => ethFrame(PEER_MAC, macs[i]!, 64, k))), 60);
  });
  // The driver domain runs 3 times per engine run: the NIC's ring is the bottleneck.
  for (let round = 0; round < 10; round++) {
    for (let k = 0; k < 3; k++) r.loop.step(++r.now);
    r.rig.step();
    r.peer.receive();
    r.peer.release();
  }
  const sent = macs.map((_, i) => r.netif(i).tx_frames);
  assert.ok(sent.reduce((a, b) => a + b, 0) < 180, 'the NIC was the bottleneck throughout');
  for (const n of sent) assert.ok(n >= 15, `every netif was served: ${sent.join(', ')}`);
  assert.ok(r.bridge().nic_tx_full_waits > 0, 'the NIC was full');
  assert.equal(r.unaccounted(), 0);
});
