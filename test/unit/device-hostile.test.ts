/**
 * A hostile guest against one engine (ARCHITECTURE.md rules 6-8), driven in-process with
 * engine.step(). Three VIFs share the engine: A and B run the real guest driver (VirtioNetDriver),
 * H is a MockDriver that writes its rings raw. Every case checks that the engine neither throws nor
 * hangs, that exactly the named counter moved (all other counters of H stay put), that H goes to
 * NEEDS_RESET exactly when the ring structure is broken (virtio 1.2, 2.1.2), and that A and B still
 * exchange frames afterwards.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Rig, MockDriver, ethFrame, GOOD_FEATURES, type UsedElem } from '../helpers/mock-driver.js';
import { VirtioNetDriver } from '../../src/guest/driver.js';
import { VifState } from '../../src/device/engine-vif.js';
import { VIF_COUNTERS, type VifCounter } from '../../src/layout/counters.js';
import { maxFrameBytes, RINGS_OFFSET } from '../../src/layout/vif.js';
import {
  NET_HDR_BYTES, STATUS_NEEDS_RESET, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
  F_CSUM, F_INDIRECT_DESC, F_MAC, F_EVENT_IDX, features,
} from '../../src/virtio/constants.js';

const MAC_A = '02:00:00:00:00:0a';
const MAC_B = '02:00:00:00:00:0b';
const MAC_H = '02:00:00:00:00:0c';
const MAC_NOBODY = '02:00:00:00:00:99'; // unknown unicast: goes to the (null) uplink
const SLOT_A = 0;
const SLOT_B = 1;
const SLOT_H = 2;
const HQ = 8; // the hostile VIF's queue size
const MTU = 1500;
const TX_LIMIT = NET_HDR_BYTES + maxFrameBytes(MTU); // largest TX chain the device accepts

/** Counters that move on every kick or interrupt; the cases check them separately where it matters. */
const NOTIFY: readonly VifCounter[] = ['kicks', 'irq_raised', 'irq_coalesced'];

type Counters = Record<VifCounter, number>;

class World {
  readonly rig = new Rig();
  readonly a: VirtioNetDriver;
  readonly b: VirtioNetDriver;
  readonly h: MockDriver;
  seq = 0;

  constructor() {
    const sa = this.rig.addVif(SLOT_A, MAC_A);
    const sb = this.rig.addVif(SLOT_B, MAC_B);
    const sh = this.rig.addVif(SLOT_H, MAC_H, { queueSize: HQ, mtu: MTU });
    this.a = new VirtioNetDriver({ vifId: 'a', vif: sa, doorbell: this.rig.doorbell });
    this.b = new VirtioNetDriver({ vifId: 'b', vif: sb, doorbell: this.rig.doorbell });
    this.h = new MockDriver(sh, this.rig.doorbell);
    this.h.init();
    this.h.kick();
    this.rig.step();
    for (const s of [SLOT_A, SLOT_B, SLOT_H]) assert.equal(this.state(s), VifState.LIVE, `VIF ${s} is live after init`);
    this.goodPairPasses();
  }

  get engine() {
    return this.rig.engine;
  }

  state(slot: number): VifState | undefined {
    return this.engine.vifs[slot]?.state;
  }

  counters(slot = SLOT_H): Counters {
    return this.rig.vifCounters(slot);
  }

  /** A sends to B and B to A; each receives exactly that frame; no drop counter moves. */
  goodPairPasses(): void {
    const beforeA = this.counters(SLOT_A);
    const beforeB = this.counters(SLOT_B);
    const lens: number[] = [];
    for (const [from, to, src, dst] of [[this.a, this.b, MAC_A, MAC_B], [this.b, this.a, MAC_B, MAC_A]] as const) {
      const f = ethFrame(dst, src, 60 + (this.seq % 40), ++this.seq);
      lens.push(f.length);
      assert.equal(from.send(f), true, 'good driver could queue a frame');
      const work = this.rig.step();
      assert.equal(typeof work, 'number');
      assert.equal(to.receive(), 1, `${dst} received the frame from ${src}`);
      assert.deepEqual(to.frame(0), f);
      to.release();
    }
    assertMoved(beforeA, this.counters(SLOT_A), { tx_frames: 1, tx_bytes: lens[0], rx_frames: 1, rx_bytes: lens[1] });
    assertMoved(beforeB, this.counters(SLOT_B), { rx_frames: 1, rx_bytes: lens[0], tx_frames: 1, tx_bytes: lens[1] });
    assert.equal(this.state(SLOT_A), VifState.LIVE);
    assert.equal(this.state(SLOT_B), VifState.LIVE);
    assert.equal(this.rig.unaccounted(), 0, 'every frame that entered the switch is delivered or counted (rule 8)');
  }

  /** A sends one frame to H. */
  aSendsToH(len = 60): Uint8Array {
    const f = ethFrame(MAC_H, MAC_A, len, ++this.seq);
    assert.equal(this.a.send(f), true);
    return f;
  }
}

/** Every counter of `after` equals `before` plus `moved` (0 when not named), except NOTIFY ones. */
function assertMoved(before: Counters, after: Counters, moved: Partial<Counters>, ignore: readonly VifCounter[] = NOTIFY): void {
  for (const k of VIF_COUNTERS) {
    if (ignore.includes(k)) continue;
    assert.equal(after[k] - before[k], moved[k] ?? 0, `counter ${k}`);
  }
}

/** Run one hostile step: `write` scribbles on H's memory, H kicks, the engine runs once. */
function hostileStep(w: World, write: (h: MockDriver) => void, kick = true): { before: Counters; after: Counters; irq: number; events: number } {
  const before = w.counters();
  const irq = w.h.irqCount();
  const events = w.rig.events.length;
  write(w.h);
  if (kick) w.h.kick();
  assert.doesNotThrow(() => w.rig.step());
  return { before, after: w.counters(), irq, events };
}

/** Tier 1 (a bad frame): chain completed with len 0, `counter` +1, VIF still live, nothing reported. */
function expectDropped(w: World, r: ReturnType<typeof hostileStep>, q: 'tx' | 'rx', counter: VifCounter, heads: number[], extra: Partial<Counters> = {}): void {
  assertMoved(r.before, r.after, { [counter]: 1, ...extra });
  const used: UsedElem[] = w.h[q].takeUsed();
  assert.deepEqual(used, heads.map((id) => ({ id, len: 0 })), 'chain completed with used len 0 (virtio 1.2, 2.7.8)');
  assert.equal(w.state(SLOT_H), VifState.LIVE, 'a bad frame does not stop the VIF');
  assert.equal(w.h.status() & STATUS_NEEDS_RESET, 0);
  assert.equal(w.rig.events.length, r.events, 'no event for a bad frame');
}

/** Tier 2 (a broken ring): `counter` +1, NEEDS_RESET set, control plane told once, guest interrupted. */
function expectNeedsReset(w: World, r: ReturnType<typeof hostileStep>, counter: VifCounter, extra: Partial<Counters> = {}): void {
  assertMoved(r.before, r.after, { [counter]: 1, ...extra });
  assert.equal(w.state(SLOT_H), VifState.NEEDS_RESET);
  assert.equal(w.engine.vifs[SLOT_H]!.dev, null, 'the device stopped using the queues');
  assert.equal(w.h.status() & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET, 'DEVICE_NEEDS_RESET in the status word (2.1.2)');
  assert.equal(w.rig.events.length, r.events + 1, 'exactly one needs-reset event');
  const ev = w.rig.events[w.rig.events.length - 1]!;
  assert.equal(ev.type, 'needs-reset');
  assert.equal(ev.slot, SLOT_H);
  assert.equal(w.h.irqCount(), r.irq + 1, 'a configuration-change interrupt tells the guest');
}

/** After NEEDS_RESET the device ignores H's rings until a reset, however H kicks. */
function expectStaysDead(w: World): void {
  const before = w.counters();
  const events = w.rig.events.length;
  const used = w.h.tx.usedIdx();
  w.h.sendGood(HQ - 1, ethFrame(MAC_B, MAC_H, 60, 1));
  w.h.kick();
  w.aSendsToH();
  w.rig.step(3);
  w.engine.sweep();
  w.rig.step();
  assertMoved(before, w.counters(), { rx_not_ready: 1 });
  assert.equal(w.h.tx.usedIdx(), used);
  assert.equal(w.b.receive(), 0, 'nothing from H reached B');
  assert.equal(w.rig.events.length, events, 'NEEDS_RESET is reported once');
  assert.equal(w.state(SLOT_H), VifState.NEEDS_RESET);
}

/** H still sends a good frame to B and receives one from A (after a tier-1 drop or a reset). */
function expectHWorks(w: World): void {
  const before = w.counters();
  const f = ethFrame(MAC_B, MAC_H, 64, ++w.seq);
  const i = w.h.tx.availIdx % HQ;
  w.h.sendGood(i, f);
  w.h.kick();
  w.rig.step();
  assert.deepEqual(w.h.tx.takeUsed(), [{ id: i, len: 0 }]);
  assert.equal(w.b.receive(), 1);
  assert.deepEqual(w.b.frame(0), f);
  w.b.release();
  w.h.rx.takeUsed();
  w.h.postRx(1, w.h.rx.availIdx % HQ);
  w.h.kick();
  const g = w.aSendsToH(70);
  w.rig.step();
  const used = w.h.rx.takeUsed();
  assert.equal(used.length, 1);
  assert.equal(used[0]!.len, NET_HDR_BYTES + g.length);
  assert.deepEqual(w.h.rxFrame(used[0]!), g);
  assertMoved(before, w.counters(), { tx_frames: 1, tx_bytes: f.length, rx_frames: 1, rx_bytes: g.length });
}

const F = VIRTQ_DESC_F_NEXT;
const WR = VIRTQ_DESC_F_WRITE;

// ---- guest transmit queue: protocol violations (NEEDS_RESET) -----------------------------------

describe('hostile guest, transmit queue, broken ring => NEEDS_RESET', () => {
  const cases: [string, VifCounter, (h: MockDriver) => void][] = [
    ['descriptor loop: two descriptors pointing at each other', 'proto_desc_loop', (h) => {
      h.tx.setDesc(0, h.txBuf(0), 20, F, 1);
      h.tx.setDesc(1, h.txBuf(1), 20, F, 0);
      h.tx.add(0);
      h.tx.publish();
    }],
    ['descriptor loop: a descriptor chained to itself', 'proto_desc_loop', (h) => {
      h.tx.setDesc(3, h.txBuf(3), 20, F, 3);
      h.tx.add(3);
      h.tx.publish();
    }],
    ['descriptor loop through every descriptor (chain longer than the queue)', 'proto_desc_loop', (h) => {
      for (let i = 0; i < HQ; i++) h.tx.setDesc(i, h.txBuf(i), 1, F, (i + 1) % HQ);
      h.tx.add(5);
      h.tx.publish();
    }],
    ['descriptor loop made of bad buffers (bad frame does not hide the loop)', 'proto_desc_loop', (h) => {
      h.tx.setDesc(0, 0, 0, F | WR, 1);
      h.tx.setDesc(1, 0xffffffff, 0xffffffff, F, 0);
      h.tx.add(0);
      h.tx.publish();
    }],
    ['next out of range (next == queue size)', 'proto_bad_desc_index', (h) => {
      h.tx.setDesc(0, h.txBuf(0), 40, F, HQ);
      h.tx.add(0);
      h.tx.publish();
    }],
    ['next out of range (next == 0xffff) after a good descriptor', 'proto_bad_desc_index', (h) => {
      h.tx.setDesc(0, h.txBuf(0), 40, F, 1);
      h.tx.setDesc(1, h.txBuf(1), 40, F, 0xffff);
      h.tx.add(0);
      h.tx.publish();
    }],
    ['head index out of range (== queue size)', 'proto_bad_desc_index', (h) => {
      h.tx.add(HQ);
      h.tx.publish();
    }],
    ['head index out of range (0xffff)', 'proto_bad_desc_index', (h) => {
      h.tx.add(0xffff);
      h.tx.publish();
    }],
    ['avail idx jumps by queue size + 1', 'proto_avail_jump', (h) => {
      for (let i = 0; i < HQ; i++) h.tx.setDesc(i, h.txBuf(i), 40, 0, 0);
      h.tx.publish(HQ + 1);
    }],
    ['avail idx goes backwards (0xffff)', 'proto_avail_jump', (h) => {
      h.tx.publish(0xffff);
    }],
    ['avail idx jumps to 0x8000', 'proto_avail_jump', (h) => {
      h.tx.publish(0x8000);
    }],
    ['INDIRECT descriptor without VIRTIO_F_INDIRECT_DESC', 'proto_indirect', (h) => {
      h.tx.setDesc(0, h.txBuf(0), 16, VIRTQ_DESC_F_INDIRECT, 0);
      h.tx.add(0);
      h.tx.publish();
    }],
    ['INDIRECT flag on the second descriptor of a chain', 'proto_indirect', (h) => {
      h.tx.setDesc(0, h.txBuf(0), 40, F, 1);
      h.tx.setDesc(1, h.txBuf(1), 16, VIRTQ_DESC_F_INDIRECT, 0);
      h.tx.add(0);
      h.tx.publish();
    }],
  ];
  for (const [name, counter, write] of cases) {
    test(name, () => {
      const w = new World();
      const r = hostileStep(w, write);
      expectNeedsReset(w, r, counter);
      assert.equal(w.h.tx.usedIdx(), 0, 'nothing completed on a broken ring');
      w.goodPairPasses();
      expectStaysDead(w);
      w.goodPairPasses();
    });
  }

  test('a good chain before the broken one in the same batch is still switched', () => {
    const w = new World();
    const f = ethFrame(MAC_B, MAC_H, 80, 7);
    const r = hostileStep(w, (h) => {
      h.tx.setDesc(0, h.txBuf(0), h.writePacket(h.txBuf(0), f), 0, 0);
      h.tx.setDesc(1, h.txBuf(1), 20, F, 1);
      h.tx.add(0);
      h.tx.add(1);
      h.tx.publish();
    });
    expectNeedsReset(w, r, 'proto_desc_loop', { tx_frames: 1, tx_bytes: 80 });
    assert.equal(w.b.receive(), 1);
    assert.deepEqual(w.b.frame(0), f);
    w.b.release();
    w.goodPairPasses();
  });

  test('avail idx advanced by exactly the queue size is not a jump', () => {
    const w = new World();
    const r = hostileStep(w, (h) => {
      for (let i = 0; i < HQ; i++) {
        h.tx.setDesc(i, h.txBuf(i), h.writePacket(h.txBuf(i), ethFrame(MAC_NOBODY, MAC_H, 60, i)), 0, 0);
        h.tx.add(i);
      }
      h.tx.publish();
    });
    assertMoved(r.before, r.after, { tx_frames: HQ, tx_bytes: 60 * HQ });
    assert.equal(w.h.tx.takeUsed().length, HQ);
    assert.equal(w.state(SLOT_H), VifState.LIVE);
    w.goodPairPasses();
  });

  test('a chain exactly as long as the queue is not a loop', () => {
    const w = new World();
    const f = ethFrame(MAC_B, MAC_H, 100, 9);
    const r = hostileStep(w, (h) => {
      const base = h.txBuf(0);
      h.writePacket(base, f);
      const total = NET_HDR_BYTES + f.length;
      const part = Math.ceil(total / HQ);
      for (let i = 0; i < HQ; i++) {
        const off = i * part;
        const len = Math.min(part, total - off);
        h.tx.setDesc(i, base + off, len, i < HQ - 1 ? F : 0, i + 1);
      }
      h.tx.add(0);
      h.tx.publish();
    });
    assertMoved(r.before, r.after, { tx_frames: 1, tx_bytes: 100 });
    assert.deepEqual(w.h.tx.takeUsed(), [{ id: 0, len: 0 }]);
    assert.equal(w.b.receive(), 1);
    assert.deepEqual(w.b.frame(0), f);
    w.b.release();
    w.goodPairPasses();
  });
});

// ---- guest transmit queue: bad frames (dropped, counted, VIF stays live) -----------------------

describe('hostile guest, transmit queue, bad frame => dropped with used len 0', () => {
  // A well-formed 60-byte frame from H to B, written at H's TX buffer 0 by each case that needs it.
  const good = (h: MockDriver): number => h.writePacket(h.txBuf(0), ethFrame(MAC_B, MAC_H, 60, 1));
  const end = (h: MockDriver): number => h.layout.byteLength;
  const single = (h: MockDriver, addr: number, len: number, flags = 0, addrHi?: number): void => {
    h.tx.setDesc(0, addr, len, flags, 0, addrHi);
    h.tx.add(0);
    h.tx.publish();
  };
  const cases: [string, VifCounter, (h: MockDriver) => void][] = [
    ['buffer at address 0 (the header page)', 'tx_bad_addr', (h) => single(h, 0, 72)],
    ['buffer starting one byte below the rings (straddles the header page)', 'tx_bad_addr', (h) => single(h, RINGS_OFFSET - 1, 72)],
    ['buffer at the end of guest memory', 'tx_bad_addr', (h) => single(h, end(h), 72)],
    ['buffer running past the end of guest memory', 'tx_bad_addr', (h) => single(h, end(h) - 30, 72)],
    ['buffer above 4 GiB (address high word set)', 'tx_bad_addr', (h) => { good(h); single(h, h.txBuf(0), 72, 0, 1); }],
    ['buffer at 0xffffffff', 'tx_bad_addr', (h) => single(h, 0xffffffff, 72)],
    ['second buffer of a chain outside guest memory', 'tx_bad_addr', (h) => {
      good(h);
      h.tx.setDesc(0, h.txBuf(0), 30, F, 1);
      h.tx.setDesc(1, end(h) + 4096, 42, 0, 0);
      h.tx.add(0);
      h.tx.publish();
    }],
    ['zero-length descriptor', 'tx_bad_desc', (h) => { good(h); single(h, h.txBuf(0), 0); }],
    ['zero-length descriptor in the middle of a chain', 'tx_bad_desc', (h) => {
      good(h);
      h.tx.setDesc(0, h.txBuf(0), 30, F, 1);
      h.tx.setDesc(1, h.txBuf(0) + 30, 0, F, 2);
      h.tx.setDesc(2, h.txBuf(0) + 30, 42, 0, 0);
      h.tx.add(0);
      h.tx.publish();
    }],
    ['device-writable (write-only) descriptor in a transmit chain', 'tx_bad_desc', (h) => { good(h); single(h, h.txBuf(0), 72, WR); }],
    ['readable then writable descriptor in a transmit chain', 'tx_bad_desc', (h) => {
      good(h);
      h.tx.setDesc(0, h.txBuf(0), 40, F, 1);
      h.tx.setDesc(1, h.txBuf(0) + 40, 32, WR, 0);
      h.tx.add(0);
      h.tx.publish();
    }],
    ['oversized descriptor (one byte over header + MTU frame)', 'tx_oversize', (h) => single(h, h.txBuf(0), TX_LIMIT + 1)],
    ['oversized descriptor (len 0xffffffff)', 'tx_oversize', (h) => single(h, h.txBuf(0), 0xffffffff)],
    ['chain whose buffers add up past header + MTU frame', 'tx_oversize', (h) => {
      h.tx.setDesc(0, h.txBuf(0), TX_LIMIT - 10, F, 1);
      h.tx.setDesc(1, h.txBuf(1), 11, 0, 0);
      h.tx.add(0);
      h.tx.publish();
    }],
    ['runt: header plus 13 bytes', 'tx_runt', (h) => { good(h); single(h, h.txBuf(0), NET_HDR_BYTES + 13); }],
    ['runt: header only', 'tx_runt', (h) => { good(h); single(h, h.txBuf(0), NET_HDR_BYTES); }],
    ['runt: shorter than the virtio header', 'tx_runt', (h) => { good(h); single(h, h.txBuf(0), 5); }],
    ['header asks for a checksum (NEEDS_CSUM, not negotiated)', 'tx_bad_header', (h) => {
      h.writePacket(h.txBuf(0), ethFrame(MAC_B, MAC_H, 60, 1), [1, 0, 0, 0, 14, 0, 16, 0, 0, 0, 0, 0]);
      single(h, h.txBuf(0), 72);
    }],
    ['header asks for TCPv4 segmentation (GSO, not negotiated)', 'tx_bad_header', (h) => {
      h.writePacket(h.txBuf(0), ethFrame(MAC_B, MAC_H, 60, 1), [0, 1, 54, 0, 0xb4, 5, 0, 0, 0, 0, 0, 0]);
      single(h, h.txBuf(0), 72);
    }],
    ['header with GSO ECN bit and GSO_NONE', 'tx_bad_header', (h) => {
      h.writePacket(h.txBuf(0), ethFrame(MAC_B, MAC_H, 60, 1), [0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
      single(h, h.txBuf(0), 72);
    }],
    ['header with gso_type 0xff', 'tx_bad_header', (h) => {
      h.writePacket(h.txBuf(0), ethFrame(MAC_B, MAC_H, 60, 1), [0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
      single(h, h.txBuf(0), 72);
    }],
    ['source MAC is not the VIF\'s own (spoofing)', 'tx_spoofed_mac', (h) => {
      h.writePacket(h.txBuf(0), ethFrame(MAC_B, MAC_A, 60, 1));
      single(h, h.txBuf(0), 72);
    }],
    ['frame to its own MAC', 'tx_to_self', (h) => {
      h.writePacket(h.txBuf(0), ethFrame(MAC_H, MAC_H, 60, 1));
      single(h, h.txBuf(0), 72);
    }],
  ];
  for (const [name, counter, write] of cases) {
    test(name, () => {
      const w = new World();
      const r = hostileStep(w, write);
      expectDropped(w, r, 'tx', counter, [0]);
      assert.equal(w.b.receive(), 0, 'the dropped frame reached nobody');
      w.goodPairPasses();
      expectHWorks(w);
      w.goodPairPasses();
    });
  }

  test('a header flag bit the device does not know (0x80) is ignored, the frame delivered (5.1.6.2.2)', () => {
    const w = new World();
    const f = ethFrame(MAC_B, MAC_H, 60, 1);
    const r = hostileStep(w, (h) => {
      h.writePacket(h.txBuf(0), f, [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
      single(h, h.txBuf(0), 72);
    });
    assertMoved(r.before, r.after, { tx_frames: 1, tx_bytes: 60 });
    assert.equal(w.b.receive(), 1);
    assert.deepEqual(w.b.frame(0), f);
    w.b.release();
  });

  test('several bad chains in one batch: one counter step per chain, all completed with len 0', () => {
    const w = new World();
    const r = hostileStep(w, (h) => {
      h.tx.setDesc(0, 0, 72, 0, 0); // bad address
      h.tx.setDesc(1, h.txBuf(1), 0, 0, 0); // zero length
      h.tx.setDesc(2, h.txBuf(2), 72, WR, 0); // write-only
      h.tx.setDesc(3, h.txBuf(3), TX_LIMIT + 1, 0, 0); // oversize
      h.tx.setDesc(4, h.txBuf(4), 20, 0, 0); // runt
      for (const i of [0, 1, 2, 3, 4]) h.tx.add(i);
      h.tx.publish();
    });
    assertMoved(r.before, r.after, { tx_bad_addr: 1, tx_bad_desc: 2, tx_oversize: 1, tx_runt: 1 });
    assert.deepEqual(w.h.tx.takeUsed(), [0, 1, 2, 3, 4].map((id) => ({ id, len: 0 })));
    assert.equal(w.state(SLOT_H), VifState.LIVE);
    w.goodPairPasses();
    expectHWorks(w);
  });

  test('the largest legal frame (header + MTU + 18) passes', () => {
    const w = new World();
    const f = ethFrame(MAC_B, MAC_H, maxFrameBytes(MTU), 3);
    const r = hostileStep(w, (h) => single(h, h.txBuf(0), h.writePacket(h.txBuf(0), f)));
    assertMoved(r.before, r.after, { tx_frames: 1, tx_bytes: f.length });
    assert.equal(w.b.receive(), 1);
    assert.deepEqual(w.b.frame(0), f);
    w.b.release();
    w.goodPairPasses();
  });

  test('the shortest legal frame (an Ethernet header) passes', () => {
    const w = new World();
    const f = ethFrame(MAC_B, MAC_H, 14, 0);
    const r = hostileStep(w, (h) => single(h, h.txBuf(0), h.writePacket(h.txBuf(0), f)));
    assertMoved(r.before, r.after, { tx_frames: 1, tx_bytes: 14 });
    assert.equal(w.b.receive(), 1);
    assert.deepEqual(w.b.frame(0), f);
    w.b.release();
    w.goodPairPasses();
  });

  test('header fields that only matter with offloads (csum_start/offset, hdr_len, gso_size, num_buffers) are ignored', () => {
    // virtio 1.2, 5.1.6.2.2: without NEEDS_CSUM the device MUST NOT use csum_start and csum_offset.
    const w = new World();
    const f = ethFrame(MAC_B, MAC_H, 60, 5);
    const r = hostileStep(w, (h) => single(h, h.txBuf(0), h.writePacket(h.txBuf(0), f, [0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])));
    assertMoved(r.before, r.after, { tx_frames: 1, tx_bytes: 60 });
    assert.equal(w.b.receive(), 1);
    assert.deepEqual(w.b.frame(0), f);
    w.b.release();
    w.goodPairPasses();
  });

  test('a buffer inside the ring area is guest memory: read, switched (to nobody), completed', () => {
    const w = new World();
    const r = hostileStep(w, (h) => single(h, RINGS_OFFSET, 72));
    // The descriptor table bytes as a frame: source MAC is not H's.
    assertMoved(r.before, r.after, { tx_spoofed_mac: 1 });
    assert.deepEqual(w.h.tx.takeUsed(), [{ id: 0, len: 0 }]);
    w.goodPairPasses();
  });
});

// ---- guest receive queue ------------------------------------------------------------------------

describe('hostile guest, receive queue', () => {
  const post = (h: MockDriver, addr: number, len: number, flags: number, addrHi?: number): void => {
    h.rx.setDesc(0, addr, len, flags, 0, addrHi);
    h.rx.add(0);
    h.rx.publish();
  };
  const dropped: [string, VifCounter, (h: MockDriver) => void][] = [
    ['read-only (driver-readable) receive buffer', 'rx_bad_desc', (h) => post(h, h.rxBuf(0), h.layout.bufferBytes, 0)],
    ['zero-length receive buffer', 'rx_bad_desc', (h) => post(h, h.rxBuf(0), 0, WR)],
    ['writable then read-only buffer in one receive chain', 'rx_bad_desc', (h) => {
      h.rx.setDesc(0, h.rxBuf(0), 20, WR | F, 1);
      h.rx.setDesc(1, h.rxBuf(1), 200, 0, 0);
      h.rx.add(0);
      h.rx.publish();
    }],
    ['receive buffer in the header page', 'rx_bad_addr', (h) => post(h, 64, 1600, WR)],
    ['receive buffer past the end of guest memory', 'rx_bad_addr', (h) => post(h, h.layout.byteLength - 20, 1600, WR)],
    ['receive buffer above 4 GiB', 'rx_bad_addr', (h) => post(h, h.rxBuf(0), 1600, WR, 0x10)],
    ['receive buffer too small for header + frame', 'rx_buffer_too_small', (h) => post(h, h.rxBuf(0), NET_HDR_BYTES + 59, WR)],
    ['receive chain too small for header + frame', 'rx_buffer_too_small', (h) => {
      h.rx.setDesc(0, h.rxBuf(0), 30, WR | F, 1);
      h.rx.setDesc(1, h.rxBuf(1), 30, WR, 0);
      h.rx.add(0);
      h.rx.publish();
    }],
  ];
  for (const [name, counter, write] of dropped) {
    test(`${name} => frame dropped, ${counter}`, () => {
      const w = new World();
      const aBefore = w.counters(SLOT_A);
      const r = hostileStep(w, (h) => {
        write(h);
        w.aSendsToH(60);
      });
      expectDropped(w, r, 'rx', counter, [0]);
      assertMoved(aBefore, w.counters(SLOT_A), { tx_frames: 1, tx_bytes: 60 });
      w.goodPairPasses();
      expectHWorks(w);
      w.goodPairPasses();
    });
  }

  test('no receive buffer posted => rx_no_buffer, nothing completed', () => {
    const w = new World();
    const r = hostileStep(w, () => w.aSendsToH(60));
    assertMoved(r.before, r.after, { rx_no_buffer: 1 });
    assert.deepEqual(w.h.rx.takeUsed(), []);
    assert.equal(w.state(SLOT_H), VifState.LIVE);
    w.goodPairPasses();
  });

  test('a receive chain of two small buffers holds header + frame', () => {
    const w = new World();
    const r = hostileStep(w, (h) => {
      h.rx.setDesc(0, h.rxBuf(0), 40, WR | F, 1);
      h.rx.setDesc(1, h.rxBuf(0) + 40, 40, WR, 0);
      h.rx.add(0);
      h.rx.publish();
      w.aSendsToH(60);
    });
    assertMoved(r.before, r.after, { rx_frames: 1, rx_bytes: 60 });
    assert.deepEqual(w.h.rx.takeUsed(), [{ id: 0, len: NET_HDR_BYTES + 60 }]);
    w.goodPairPasses();
  });

  test('a receive buffer over its own rings: written (it is the guest\'s memory), nobody else hurt', () => {
    const w = new World();
    const r = hostileStep(w, (h) => {
      post(h, h.tx.layout.desc, 200, WR); // the frame lands on H's own transmit descriptor table
      w.aSendsToH(60);
    });
    assertMoved(r.before, r.after, { rx_frames: 1, rx_bytes: 60 });
    assert.deepEqual(w.h.rx.takeUsed(), [{ id: 0, len: NET_HDR_BYTES + 60 }]);
    w.goodPairPasses();
  });

  const broken: [string, VifCounter, (h: MockDriver) => void][] = [
    ['receive descriptor loop', 'proto_desc_loop', (h) => {
      h.rx.setDesc(0, h.rxBuf(0), 10, WR | F, 1);
      h.rx.setDesc(1, h.rxBuf(1), 10, WR | F, 0);
      h.rx.add(0);
      h.rx.publish();
    }],
    ['receive loop after the frame already fits', 'proto_desc_loop', (h) => {
      h.rx.setDesc(0, h.rxBuf(0), 1600, WR | F, 1);
      h.rx.setDesc(1, h.rxBuf(1), 10, WR | F, 1);
      h.rx.add(0);
      h.rx.publish();
    }],
    ['receive next out of range', 'proto_bad_desc_index', (h) => {
      h.rx.setDesc(0, h.rxBuf(0), 10, WR | F, HQ + 3);
      h.rx.add(0);
      h.rx.publish();
    }],
    ['receive head out of range', 'proto_bad_desc_index', (h) => {
      h.rx.add(HQ);
      h.rx.publish();
    }],
    ['receive avail idx jump', 'proto_avail_jump', (h) => h.rx.publish(HQ + 1)],
    ['receive avail idx backwards', 'proto_avail_jump', (h) => h.rx.publish(0xfff0)],
    ['receive INDIRECT descriptor', 'proto_indirect', (h) => post(h, h.rxBuf(0), 16, WR | VIRTQ_DESC_F_INDIRECT)],
  ];
  for (const [name, counter, write] of broken) {
    test(`${name} => NEEDS_RESET, ${counter}`, () => {
      const w = new World();
      const aBefore = w.counters(SLOT_A);
      const r = hostileStep(w, (h) => {
        write(h);
        w.aSendsToH(60);
      });
      // The frame that met the broken ring is dropped and counted like any frame for a VIF that is
      // not live: rx_not_ready (rule 8: frames in = frames out + counted drops).
      expectNeedsReset(w, r, counter, { rx_not_ready: 1 });
      assert.equal(w.h.rx.usedIdx(), 0);
      assertMoved(aBefore, w.counters(SLOT_A), { tx_frames: 1, tx_bytes: 60 });
      w.goodPairPasses();
      expectStaysDead(w);
      w.goodPairPasses();
    });
  }
});

// ---- features, status and reset ----------------------------------------------------------------

describe('hostile guest, feature negotiation and reset', () => {
  const bad: [string, ReturnType<typeof features>][] = [
    ['INDIRECT_DESC, which the device does not offer', features(...bitsOf(GOOD_FEATURES), F_INDIRECT_DESC)],
    ['CSUM, which the device does not offer', features(F_CSUM, ...bitsOf(GOOD_FEATURES))],
    ['a high feature bit (33) the device does not offer', { lo: GOOD_FEATURES.lo, hi: GOOD_FEATURES.hi | 2 }],
    ['every bit', { lo: 0xffffffff, hi: 0xffffffff }],
    ['no VERSION_1 (a legacy driver)', features(F_MAC, F_EVENT_IDX)],
  ];
  for (const [name, f] of bad) {
    test(`driver accepts ${name} => proto_bad_features, NEEDS_RESET`, () => {
      const w = new World();
      const r = hostileStep(w, (h) => h.setStatus(0)); // a reset of the live VIF, seen by the device
      assertMoved(r.before, r.after, { resets: 1 });
      assert.equal(w.state(SLOT_H), VifState.WAITING);
      const r2 = hostileStep(w, (h) => h.init(f));
      expectNeedsReset(w, r2, 'proto_bad_features');
      assert.deepEqual(w.rig.events.at(-1), { type: 'needs-reset', slot: SLOT_H, reason: 'proto_bad_features' });
      w.goodPairPasses();
      expectStaysDead(w);
      w.goodPairPasses();
    });
  }

  test('reset after NEEDS_RESET: status 0 seen by the device, then re-initialisation', () => {
    const w = new World();
    expectNeedsReset(w, hostileStep(w, (h) => { h.tx.add(HQ); h.tx.publish(); }), 'proto_bad_desc_index');
    const r = hostileStep(w, (h) => h.setStatus(0));
    assertMoved(r.before, r.after, { resets: 1 });
    assert.equal(w.state(SLOT_H), VifState.WAITING);
    w.goodPairPasses();
    const r2 = hostileStep(w, (h) => h.init());
    assertMoved(r2.before, r2.after, {});
    assert.equal(w.state(SLOT_H), VifState.LIVE);
    assert.equal(w.h.status() & STATUS_NEEDS_RESET, 0);
    expectHWorks(w);
    w.goodPairPasses();
  });

  test('reset after NEEDS_RESET: status 0 and re-initialisation before the device looks (like VirtioNetDriver.reset)', () => {
    const w = new World();
    expectNeedsReset(w, hostileStep(w, (h) => { h.tx.publish(0x4000); }), 'proto_avail_jump');
    // The driver writes 0 and re-initialises at once (virtio 1.2, 3.1.1); the device only sees
    // the final status word, which no longer carries DEVICE_NEEDS_RESET.
    const r = hostileStep(w, (h) => h.init());
    assertMoved(r.before, r.after, { resets: 1 });
    assert.equal(w.state(SLOT_H), VifState.LIVE);
    expectHWorks(w);
    w.goodPairPasses();
    // And it can be broken and reset again.
    expectNeedsReset(w, hostileStep(w, (h) => { h.tx.setDesc(1, h.txBuf(1), 10, F, 1); h.tx.add(1); h.tx.publish(); }), 'proto_desc_loop');
    const r3 = hostileStep(w, (h) => h.init());
    assertMoved(r3.before, r3.after, { resets: 1 });
    expectHWorks(w);
    w.goodPairPasses();
  });

  test('reset after proto_bad_features with good features makes the VIF work', () => {
    const w = new World();
    hostileStep(w, (h) => h.setStatus(0));
    expectNeedsReset(w, hostileStep(w, (h) => h.init({ lo: 0xffffffff, hi: 0xffffffff })), 'proto_bad_features');
    const r = hostileStep(w, (h) => h.init());
    assertMoved(r.before, r.after, { resets: 1 });
    assert.equal(w.state(SLOT_H), VifState.LIVE);
    expectHWorks(w);
    w.goodPairPasses();
  });

  test('the real guest driver recovers from NEEDS_RESET with reset()', () => {
    const w = new World();
    // B's guest turns hostile for a moment: it scribbles an out-of-range head on its receive ring.
    const bSab = w.engine.vifs[SLOT_B]!.sab;
    const bMock = new MockDriver(bSab, w.rig.doorbell);
    const beforeB = w.counters(SLOT_B);
    for (let k = 0; k < bMock.size; k++) bMock.rx.avail16[2 + k] = 0xffff;
    const f = ethFrame(MAC_B, MAC_A, 60, 99);
    assert.equal(w.a.send(f), true);
    w.rig.step();
    assertMoved(beforeB, w.counters(SLOT_B), { proto_bad_desc_index: 1, rx_not_ready: 1 });
    assert.equal(w.state(SLOT_B), VifState.NEEDS_RESET);
    assert.equal(w.b.needsReset, true);
    // A and H are unaffected.
    const g = ethFrame(MAC_A, MAC_H, 66, 100);
    w.h.sendGood(0, g);
    w.h.kick();
    w.rig.step();
    assert.equal(w.a.receive(), 1);
    assert.deepEqual(w.a.frame(0), g);
    w.a.release();
    // The driver writes 0 and waits for the device to see it (virtio 1.2, 4.1.4.3.2) ...
    w.b.reset();
    assert.equal(w.b.resetting, true);
    assert.equal(w.b.pollRx(), false, 'no data path while the reset is unacknowledged');
    w.rig.step();
    assert.equal(w.state(SLOT_B), VifState.WAITING);
    // ... then initialises again on its next call, and the device starts the queues.
    assert.equal(w.b.pollRx(), false);
    assert.equal(w.b.resetting, false);
    w.rig.step();
    assert.equal(w.state(SLOT_B), VifState.LIVE);
    assert.equal(w.counters(SLOT_B).resets - beforeB.resets, 1);
    w.goodPairPasses();
  });

  test('resetting a live VIF with the real driver restarts it cleanly (no false protocol violation)', () => {
    const w = new World();
    w.goodPairPasses(); // ring positions are now past 0 on both sides
    w.goodPairPasses();
    const before = w.counters(SLOT_A);
    w.a.reset();
    w.rig.step(); // the device sees status 0 and drops its queue state
    assert.equal(w.state(SLOT_A), VifState.WAITING);
    w.a.pollRx(); // the driver sees the acknowledgement and initialises from index 0
    w.rig.step();
    assert.equal(w.state(SLOT_A), VifState.LIVE);
    assertMoved(before, w.counters(SLOT_A), { resets: 1 });
    w.goodPairPasses();
  });

  test('status word nonsense while live does not disturb anybody', () => {
    const w = new World();
    for (const s of [0x40, 0x3f, 0xff00, 0x7fffffff, -1, 0x80 | 0x0f]) {
      const r = hostileStep(w, (h) => h.setStatus(s));
      assertMoved(r.before, r.after, {});
      assert.equal(w.rig.events.length, 0);
      w.goodPairPasses();
    }
  });

  test('kicks from a VIF that never initialised are harmless', () => {
    const w = new World();
    const r = hostileStep(w, (h) => { h.setStatus(0); });
    assertMoved(r.before, r.after, { resets: 1 });
    for (let i = 0; i < 3; i++) {
      const r2 = hostileStep(w, (h) => { h.tx.add(HQ + 1); h.tx.publish(0x9999); });
      assertMoved(r2.before, r2.after, {});
      assert.equal(w.state(SLOT_H), VifState.WAITING);
      w.goodPairPasses();
    }
  });
});

function bitsOf(f: { lo: number; hi: number }): number[] {
  const out: number[] = [];
  for (let b = 0; b < 64; b++) if (b < 32 ? (f.lo >>> b) & 1 : (f.hi >>> (b - 32)) & 1) out.push(b);
  return out;
}
