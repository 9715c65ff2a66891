/**
 * A hostile guest on the driver-domain path: its netif's rings get the same treatment as a VIF's
 * on the device (ARCHITECTURE.md rules 6-8). Driven in-process (test/helpers/dd-rig.ts): netifs A
 * and B run the real VirtioNetDriver, H is a MockDriver that writes its rings raw, and a peer host
 * sits on the device behind the driver domain's NIC. Every case checks that the driver domain does
 * not throw, that exactly the named counter of H moved, that H goes to NEEDS_RESET exactly when
 * the ring structure is broken, that the bridge's books balance, and that A, B and the peer host
 * still exchange frames afterwards.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DdRig, PEER_MAC } from '../helpers/dd-rig.js';
import { MockDriver, ethFrame, GOOD_FEATURES } from '../helpers/mock-driver.js';
import { VirtioNetDriver } from '../../src/guest/driver.js';
import { VifState } from '../../src/device/engine-vif.js';
import { VIF_COUNTERS, type VifCounter } from '../../src/layout/counters.js';
import { W } from '../../src/layout/doorbell.js';
import { maxFrameBytes, RINGS_OFFSET } from '../../src/layout/vif.js';
import {
  NET_HDR_BYTES, STATUS_NEEDS_RESET, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
  F_CSUM, features,
} from '../../src/virtio/constants.js';

const MAC_A = '02:00:00:00:00:0a';
const MAC_B = '02:00:00:00:00:0b';
const MAC_H = '02:00:00:00:00:0c';
const SLOT_A = 0;
const SLOT_B = 1;
const SLOT_H = 2;
const HQ = 8;
const F = VIRTQ_DESC_F_NEXT;
const WR = VIRTQ_DESC_F_WRITE;
const NOTIFY: readonly VifCounter[] = ['kicks', 'irq_raised', 'irq_coalesced'];
type Counters = Record<VifCounter, number>;

class World {
  readonly r = new DdRig();
  readonly a: VirtioNetDriver;
  readonly b: VirtioNetDriver;
  readonly h: MockDriver;
  seq = 0;

  constructor() {
    this.a = new VirtioNetDriver({ vifId: 'a', vif: this.r.addNetif(SLOT_A, MAC_A), doorbell: this.r.evtchn });
    this.b = new VirtioNetDriver({ vifId: 'b', vif: this.r.addNetif(SLOT_B, MAC_B), doorbell: this.r.evtchn });
    this.r.step(3);
    // The peer host announces itself (as ARP would): the bridge learns it on the NIC port.
    assert.equal(this.r.peer.send(ethFrame('ff:ff:ff:ff:ff:ff', PEER_MAC, 60, 0)), true);
    this.r.step(3);
    for (const d of [this.a, this.b]) {
      assert.equal(d.receive(), 1, 'the broadcast was flooded to every netif');
      d.release();
    }
    this.h = new MockDriver(this.r.addNetif(SLOT_H, MAC_H, HQ), this.r.evtchn);
    this.h.init();
    this.h.kick();
    this.r.step(2);
    for (const s of [SLOT_A, SLOT_B, SLOT_H]) assert.equal(this.state(s), VifState.LIVE);
    this.goodTrafficPasses();
  }

  state(slot: number): VifState | undefined {
    return this.r.loop.nb.netifs[slot]?.state;
  }

  counters(slot = SLOT_H): Counters {
    return this.r.netif(slot);
  }

  /** A -> B (inside the driver domain), A -> peer (out by the NIC), peer -> B (in by the NIC). */
  goodTrafficPasses(): void {
    const flows: [{ send(f: Uint8Array): boolean }, VirtioNetDriver, string, string][] = [
      [this.a, this.b, MAC_A, MAC_B], [this.a, this.r.peer, MAC_A, PEER_MAC], [this.r.peer, this.b, PEER_MAC, MAC_B],
    ];
    for (const [from, to, src, dst] of flows) {
      const f = ethFrame(dst, src, 60 + (this.seq % 40), ++this.seq);
      assert.equal(from.send(f), true);
      assert.doesNotThrow(() => this.r.step(3));
      assert.equal(to.receive(), 1, `${dst} received the frame from ${src}`);
      assert.deepEqual(to.frame(0), f);
      to.release();
    }
    assert.equal(this.state(SLOT_A), VifState.LIVE);
    assert.equal(this.state(SLOT_B), VifState.LIVE);
    assert.equal(this.r.unaccounted(), 0, 'bridge: every frame delivered or counted');
    assert.equal(this.r.rig.unaccounted(), 0, 'device: every frame delivered or counted');
  }
}

function assertMoved(before: Counters, after: Counters, moved: Partial<Counters>): void {
  for (const k of VIF_COUNTERS) {
    if (NOTIFY.includes(k)) continue;
    assert.equal(after[k] - before[k], moved[k] ?? 0, `counter ${k}`);
  }
}

function hostile(w: World, write: (h: MockDriver) => void): { before: Counters; events: number; irq: number } {
  const before = w.counters();
  const events = w.r.events.length;
  const irq = w.h.irqCount();
  write(w.h);
  w.h.kick();
  assert.doesNotThrow(() => w.r.step(2));
  return { before, events, irq };
}

describe('hostile netfront, transmit ring broken => NEEDS_RESET, others unaffected', () => {
  const cases: [string, VifCounter, (h: MockDriver) => void][] = [
    ['avail index jumps past the queue size', 'proto_avail_jump', (h) => h.tx.publish(HQ + 5)],
    ['head index out of range', 'proto_bad_desc_index', (h) => {
      h.tx.add(HQ + 3);
      h.tx.publish();
    }],
    ['next index out of range', 'proto_bad_desc_index', (h) => {
      h.tx.setDesc(0, h.txBuf(0), 20, F, 200);
      h.tx.add(0);
      h.tx.publish();
    }],
    ['descriptor loop', 'proto_desc_loop', (h) => {
      h.tx.setDesc(0, h.txBuf(0), 20, F, 1);
      h.tx.setDesc(1, h.txBuf(1), 20, F, 0);
      h.tx.add(0);
      h.tx.publish();
    }],
    ['INDIRECT without the feature', 'proto_indirect', (h) => {
      h.tx.setDesc(0, h.txBuf(0), 16, VIRTQ_DESC_F_INDIRECT, 0);
      h.tx.add(0);
      h.tx.publish();
    }],
  ];
  for (const [name, counter, write] of cases) {
    test(name, () => {
      const w = new World();
      const r = hostile(w, write);
      assertMoved(r.before, w.counters(), { [counter]: 1 });
      assert.equal(w.state(SLOT_H), VifState.NEEDS_RESET);
      assert.equal(w.h.status() & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET, 'DEVICE_NEEDS_RESET set (virtio 1.2, 2.1.2)');
      assert.equal(w.r.events.length, r.events + 1);
      assert.deepEqual(w.r.events.at(-1), { type: 'needs-reset', slot: SLOT_H, reason: w.r.loop.nb.netifs[SLOT_H]!.violationReason });
      assert.equal(w.h.irqCount(), r.irq + 1, 'the guest is told by its event channel');
      w.goodTrafficPasses();
      // The guest resets and initialises again: the netif works.
      w.h.init();
      w.h.kick();
      w.r.step(2);
      assert.equal(w.state(SLOT_H), VifState.LIVE);
      assert.equal(w.counters().resets, r.before.resets + 1);
      const f = ethFrame(MAC_B, MAC_H, 64, 77);
      w.h.sendGood(0, f);
      w.h.kick();
      w.r.step(2);
      assert.equal(w.b.receive(), 1);
      assert.deepEqual(w.b.frame(0), f);
      w.b.release();
    });
  }
});

describe('hostile netfront, bad transmit frames => dropped and counted, netif stays live', () => {
  const good = (dst = MAC_B, src = MAC_H, len = 60) => ethFrame(dst, src, len, 5);
  const cases: [string, VifCounter, (h: MockDriver) => void][] = [
    ['buffer outside the netif memory', 'tx_bad_addr', (h) => h.tx.setDesc(0, h.sab.byteLength - 10, 40, 0, 0)],
    ['buffer in the header page', 'tx_bad_addr', (h) => h.tx.setDesc(0, RINGS_OFFSET - 64, 40, 0, 0)],
    ['address above 4 GiB', 'tx_bad_addr', (h) => h.tx.setDesc(0, h.txBuf(0), 40, 0, 0, 1)],
    ['device-writable descriptor in a transmit chain', 'tx_bad_desc', (h) => {
      const len = h.writePacket(h.txBuf(0), good());
      h.tx.setDesc(0, h.txBuf(0), len, WR, 0);
    }],
    ['zero-length descriptor', 'tx_bad_desc', (h) => h.tx.setDesc(0, h.txBuf(0), 0, 0, 0)],
    ['chain longer than the MTU allows', 'tx_oversize', (h) => {
      h.tx.setDesc(0, h.txBuf(0), NET_HDR_BYTES + maxFrameBytes(1500), F, 1);
      h.tx.setDesc(1, h.txBuf(1), 64, 0, 0);
    }],
    ['runt: shorter than an Ethernet header', 'tx_runt', (h) => h.tx.setDesc(0, h.txBuf(0), NET_HDR_BYTES + 10, 0, 0)],
    ['header asks for a checksum offload that was not negotiated', 'tx_bad_header', (h) => {
      const len = h.writePacket(h.txBuf(0), good(), [1]);
      h.tx.setDesc(0, h.txBuf(0), len, 0, 0);
    }],
    ["source MAC of a neighbour (B)", 'tx_spoofed_mac', (h) => {
      const len = h.writePacket(h.txBuf(0), good(MAC_A, MAC_B));
      h.tx.setDesc(0, h.txBuf(0), len, 0, 0);
    }],
    ["source MAC of the peer host (would poison the bridge's table)", 'tx_spoofed_mac', (h) => {
      const len = h.writePacket(h.txBuf(0), good(MAC_A, PEER_MAC));
      h.tx.setDesc(0, h.txBuf(0), len, 0, 0);
    }],
    ['to its own MAC', 'tx_to_self', (h) => {
      const len = h.writePacket(h.txBuf(0), good(MAC_H, MAC_H));
      h.tx.setDesc(0, h.txBuf(0), len, 0, 0);
    }],
  ];
  for (const [name, counter, write] of cases) {
    test(name, () => {
      const w = new World();
      const fdb = w.r.bridge();
      const r = hostile(w, (h) => {
        write(h);
        h.tx.add(0);
        h.tx.publish();
      });
      assertMoved(r.before, w.counters(), { [counter]: 1 });
      assert.deepEqual(w.h.tx.takeUsed(), [{ id: 0, len: 0 }], 'chain completed with used len 0 (2.7.8)');
      assert.equal(w.state(SLOT_H), VifState.LIVE);
      assert.equal(w.r.events.length, r.events);
      assert.equal(w.a.receive(), 0, 'nothing reached A');
      assert.equal(w.b.receive(), 0, 'nothing reached B');
      assert.equal(w.r.peer.receive(), 0, 'nothing reached the peer host');
      const after = w.r.bridge();
      assert.equal(after.fdb_moved, fdb.fdb_moved, 'no FDB entry moved');
      assert.equal(after.fdb_learned, fdb.fdb_learned, 'nothing learnt from a dropped frame');
      w.goodTrafficPasses();
    });
  }
});

describe('hostile netfront, bad receive buffers => counted when a frame is delivered', () => {
  const cases: [string, VifCounter, (h: MockDriver) => void][] = [
    ['read-only receive buffer', 'rx_bad_desc', (h) => h.rx.setDesc(0, h.rxBuf(0), 1536, 0, 0)],
    ['receive buffer outside the netif memory', 'rx_bad_addr', (h) => h.rx.setDesc(0, h.sab.byteLength + 64, 1536, WR, 0)],
    ['receive buffer too small', 'rx_buffer_too_small', (h) => h.rx.setDesc(0, h.rxBuf(0), 20, WR, 0)],
  ];
  for (const [name, counter, write] of cases) {
    test(name, () => {
      const w = new World();
      hostile(w, (h) => {
        write(h);
        h.rx.add(0);
        h.rx.publish();
      });
      const before = w.counters();
      for (const from of [w.a, w.r.peer] as const) {
        const src = from === w.a ? MAC_A : PEER_MAC;
        assert.equal(from.send(ethFrame(MAC_H, src, 80, 9)), true);
        w.r.step(3);
      }
      // The first frame (from A, inside the driver domain) meets the bad buffer; the second (from
      // the wire) finds no buffer at all.
      assertMoved(before, w.counters(), { [counter]: 1, rx_no_buffer: 1 });
      assert.equal(w.state(SLOT_H), VifState.LIVE);
      w.goodTrafficPasses();
    });
  }
});

test('hostile netfront accepting features the device did not offer => NEEDS_RESET', () => {
  const w = new World();
  const r0 = hostile(w, (h) => h.setStatus(0)); // a reset netback sees
  assertMoved(r0.before, w.counters(), { resets: 1 });
  const r = hostile(w, (h) => h.init(features(F_CSUM, 32)));
  assertMoved(r.before, w.counters(), { proto_bad_features: 1 });
  assert.equal(w.state(SLOT_H), VifState.NEEDS_RESET);
  w.goodTrafficPasses();
  w.h.init(GOOD_FEATURES);
  w.h.kick();
  w.r.step(2);
  assert.equal(w.state(SLOT_H), VifState.LIVE);
});

test('hostile netfront scribbling over the event-channel page costs spurious checks only', () => {
  const w = new World();
  const page = new Int32Array(w.r.evtchn);
  const spurious = w.r.dd().spurious_doorbells;
  for (let k = 0; k < 5; k++) {
    Atomics.store(page, W.SUMMARY, -1);
    for (let i = W.BITMAP; i < page.length; i++) Atomics.store(page, i, -1);
    assert.doesNotThrow(() => w.r.step(1));
  }
  assert.ok(w.r.dd().spurious_doorbells > spurious, 'bits for empty slots are counted as spurious');
  assert.equal(w.state(SLOT_H), VifState.LIVE);
  w.goodTrafficPasses();
});

test('a netif flooding its ring cannot starve its neighbours: batches are bounded per netif', () => {
  const w = new World();
  // H fills its whole transmit ring with frames to the peer host; A sends one frame to B.
  for (let i = 0; i < HQ; i++) {
    const len = w.h.writePacket(w.h.txBuf(i), ethFrame(PEER_MAC, MAC_H, 60, i));
    w.h.tx.setDesc(i, w.h.txBuf(i), len, 0, 0);
    w.h.tx.add(i);
  }
  w.h.tx.publish();
  w.h.kick();
  const f = ethFrame(MAC_B, MAC_A, 60, 99);
  assert.equal(w.a.send(f), true);
  w.r.step(3);
  assert.equal(w.b.receive(), 1);
  assert.deepEqual(w.b.frame(0), f);
  w.b.release();
  assert.equal(w.r.peer.receive(), HQ, 'every frame of H reached the peer host');
  w.r.peer.release();
  assert.equal(w.counters().tx_frames, HQ);
  w.goodTrafficPasses();
});
