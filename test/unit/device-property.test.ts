/**
 * Property test: a hostile guest writes random ring contents (descriptor tables, avail ring
 * entries, avail idx, virtio headers, status and feature words) on its VIF while two good guests
 * on the same engine talk to each other. After every engine iteration the device must have kept
 * its invariants (ARCHITECTURE.md rules 6-8):
 *
 *  - step() does not throw and returns;
 *  - counters never decrease;
 *  - on each hostile queue the device takes at most the chains made available (avail idx minus its
 *    last_avail, and none on a jump, virtio 1.2, 2.7.6) and completes at most the chains it took;
 *  - every chain completed on the hostile transmit queue has used len 0 (2.7.8: nothing written);
 *  - every completed chain is counted exactly once (transmit: tx_frames or one tx_* drop; receive:
 *    rx_frames or one rx_* drop), and every frame that entered the switch is delivered or counted;
 *  - each NEEDS_RESET is one proto_* step, one event for the hostile slot, and the status bit;
 *  - the good pair never sees a drop or a violation and still exchanges frames every round;
 *  - a reset (status 0 seen by the device, then re-initialisation) always brings the VIF back.
 *
 * Receive descriptors never point into the hostile VIF's own ring area here: the device would
 * write frames over the rings the guest gave it (its own memory, see device-hostile.test.ts), which
 * would make the used ring unreadable for the checks above.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Rig, MockDriver, ethFrame, GOOD_FEATURES } from '../helpers/mock-driver.js';
import { VirtioNetDriver } from '../../src/guest/driver.js';
import { VifState } from '../../src/device/engine-vif.js';
import type { VirtioNetDevice } from '../../src/device/virtio-net-device.js';
import type { DeviceQueue } from '../../src/virtio/device-queue.js';
import { VIF_COUNTERS, VIF_DROP_COUNTERS, type VifCounter } from '../../src/layout/counters.js';
import { maxFrameBytes, vifLayout, RINGS_OFFSET } from '../../src/layout/vif.js';
import {
  F_VERSION_1, NET_HDR_BYTES, STATUS_NEEDS_RESET, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE, features, type Features,
} from '../../src/virtio/constants.js';
import { formatMac } from '../../src/device/mac-table.js';

const MAC_A = '02:00:00:00:00:0a';
const MAC_B = '02:00:00:00:00:0b';
const MAC_H = '02:00:00:00:00:0c';
const MAC_NOBODY = '02:00:00:00:00:99';
const MAC_BCAST = 'ff:ff:ff:ff:ff:ff';
const SLOT_A = 0;
const SLOT_B = 1;
const SLOT_H = 2;
const HQ = 8;
const MTU = 1500;
const L = vifLayout(HQ, MTU); // the hostile VIF's layout, as createVifMemory builds it
const BUF = L.buffersOffset;
const END = L.byteLength;
const TX_LIMIT = NET_HDR_BYTES + maxFrameBytes(MTU);
const NEXT = VIRTQ_DESC_F_NEXT;
const WR = VIRTQ_DESC_F_WRITE;
const rxBuf = (k: number): number => BUF + k * L.bufferBytes;
const txBuf = (k: number): number => BUF + (HQ + k) * L.bufferBytes;

const PROTO: readonly VifCounter[] = VIF_COUNTERS.filter((k) => k.startsWith('proto_'));
const TX_OUTCOMES: readonly VifCounter[] = ['tx_frames', ...VIF_DROP_COUNTERS.filter((k) => k.startsWith('tx_'))];
/** Receive outcomes that complete a chain (the others drop before a buffer is taken). */
const RX_COMPLETIONS: readonly VifCounter[] = ['rx_frames', 'rx_bad_desc', 'rx_bad_addr', 'rx_buffer_too_small'];
const RX_OUTCOMES: readonly VifCounter[] = ['rx_frames', ...VIF_DROP_COUNTERS.filter((k) => k.startsWith('rx_'))];
const sum = (c: Record<VifCounter, number>, keys: readonly VifCounter[]): number => keys.reduce((s, k) => s + c[k], 0);

// ---- what the hostile guest writes ----------------------------------------------------------

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const wt = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });

const featuresArb: fc.Arbitrary<Features> = fc.oneof(
  wt(8, fc.constant(GOOD_FEATURES)),
  wt(2, fc.constant(features(F_VERSION_1))), // valid, without EVENT_IDX
  wt(1, fc.record({ lo: u32, hi: u32 })),
);

const addrArb = (rx: boolean): fc.Arbitrary<number> => fc.oneof(
  wt(6, fc.integer({ min: BUF, max: END - 1 })),
  wt(1, fc.integer({ min: 0, max: RINGS_OFFSET - 1 })),
  ...(rx ? [] : [wt(1, fc.integer({ min: RINGS_OFFSET, max: BUF - 1 }))]),
  wt(1, fc.integer({ min: END - 200, max: END + 200 })),
  wt(1, u32),
);
const addrHiArb = fc.oneof(wt(9, fc.constant(0)), wt(1, fc.integer({ min: 1, max: 0xffffffff })));
const lenArb = fc.oneof(
  wt(4, fc.integer({ min: NET_HDR_BYTES + 14, max: NET_HDR_BYTES + 200 })),
  wt(1, fc.constant(0)),
  wt(1, fc.integer({ min: 1, max: NET_HDR_BYTES + 13 })),
  wt(1, fc.constantFrom(TX_LIMIT, TX_LIMIT + 1)),
  wt(1, u32),
);
const flagsArb = (rx: boolean): fc.Arbitrary<number> => fc.oneof(
  wt(15, fc.constant(rx ? WR : 0)),
  wt(5, fc.constant((rx ? WR : 0) | NEXT)),
  wt(2, fc.constantFrom(0, NEXT, WR, WR | NEXT, VIRTQ_DESC_F_INDIRECT)),
  wt(1, u16),
);
const nextArb = fc.oneof(wt(30, fc.integer({ min: 0, max: HQ - 1 })), wt(1, fc.constant(HQ)), wt(1, u16));

type DescSpec =
  | { kind: 'buf'; k: number; flags: number; next: number } // a packet buffer, whole
  | { kind: 'raw'; addr: number; addrHi: number; len: number; flags: number; next: number };

const descArb = (rx: boolean): fc.Arbitrary<DescSpec> => fc.oneof(
  wt(4, fc.record({ kind: fc.constant('buf' as const), k: fc.integer({ min: 0, max: HQ - 1 }), flags: flagsArb(rx), next: nextArb })),
  wt(3, fc.record({ kind: fc.constant('raw' as const), addr: addrArb(rx), addrHi: addrHiArb, len: lenArb, flags: flagsArb(rx), next: nextArb })),
);

interface QueueWrite {
  descs: DescSpec[];
  heads: number[];
  delta: number;
  /** avail flags and used_event (interrupt suppression, 2.7.7 / 2.7.10): any u16. */
  availFlags: number;
  usedEvent: number;
  /** The driver scribbling on the device's used idx (null: it does not). */
  usedIdx: number | null;
}
const queueArb = (rx: boolean): fc.Arbitrary<QueueWrite> => fc.record({
  descs: fc.array(descArb(rx), { minLength: HQ, maxLength: HQ }),
  heads: fc.array(fc.oneof(wt(40, fc.integer({ min: 0, max: HQ - 1 })), wt(1, u16)), { minLength: HQ, maxLength: HQ }),
  delta: fc.oneof(wt(20, fc.integer({ min: 0, max: HQ })), wt(1, fc.constant(HQ + 1)), wt(1, u16)),
  availFlags: fc.oneof(wt(4, fc.constant(0)), wt(1, u16)),
  usedEvent: u16,
  usedIdx: fc.oneof(wt(9, fc.constant(null)), wt(1, u16)),
});

interface Packet {
  hdr: Uint8Array;
  dst: string;
  src: string;
  len: number;
}
const macArb = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => formatMac(b));
const packetArb: fc.Arbitrary<Packet> = fc.record({
  hdr: fc.oneof(wt(4, fc.constant(new Uint8Array(NET_HDR_BYTES))), wt(1, fc.uint8Array({ minLength: NET_HDR_BYTES, maxLength: NET_HDR_BYTES }))),
  dst: fc.oneof(wt(3, fc.constantFrom(MAC_NOBODY, MAC_B, MAC_A, MAC_H, MAC_BCAST)), wt(1, macArb)),
  src: fc.oneof(wt(4, fc.constant(MAC_H)), wt(1, fc.constant(MAC_A)), wt(1, macArb)),
  len: fc.integer({ min: 14, max: 200 }),
});

type StatusAction =
  | { kind: 'none' }
  | { kind: 'reset'; seen: boolean; f: Features } // status 0 (seen by the device or not), re-init
  | { kind: 'word'; value: number } // any status word
  | { kind: 'features'; f: Features }; // rewrite driver features, keep status

const statusArb: fc.Arbitrary<StatusAction> = fc.oneof(
  wt(12, fc.constant({ kind: 'none' as const })),
  wt(2, fc.record({ kind: fc.constant('reset' as const), seen: fc.boolean(), f: featuresArb })),
  wt(1, fc.record({ kind: fc.constant('word' as const), value: fc.integer({ min: -0x80000000, max: 0x7fffffff }) })),
  wt(1, fc.record({ kind: fc.constant('features' as const), f: featuresArb })),
);

interface Round {
  status: StatusAction;
  packets: Packet[];
  tx: QueueWrite;
  rx: QueueWrite;
  kick: boolean;
  sweep: boolean;
  aToH: number;
}
const roundArb: fc.Arbitrary<Round> = fc.record({
  status: statusArb,
  packets: fc.array(packetArb, { minLength: HQ, maxLength: HQ }),
  tx: queueArb(false),
  rx: queueArb(true),
  kick: fc.oneof(wt(4, fc.constant(true)), wt(1, fc.constant(false))),
  sweep: fc.oneof(wt(1, fc.constant(true)), wt(4, fc.constant(false))),
  aToH: fc.integer({ min: 0, max: 3 }),
});
const runArb = fc.record({ init: featuresArb, rounds: fc.array(roundArb, { minLength: 1, maxLength: 4 }) });

// ---- the world and its checks -----------------------------------------------------------------

class World {
  readonly rig = new Rig();
  readonly a: VirtioNetDriver;
  readonly b: VirtioNetDriver;
  readonly h: MockDriver;
  seq = 0;
  packetLen: number[] = new Array(HQ).fill(0);

  constructor(init: Features) {
    const sa = this.rig.addVif(SLOT_A, MAC_A);
    const sb = this.rig.addVif(SLOT_B, MAC_B);
    const sh = this.rig.addVif(SLOT_H, MAC_H, { queueSize: HQ, mtu: MTU });
    this.a = new VirtioNetDriver({ vifId: 'a', vif: sa, doorbell: this.rig.doorbell });
    this.b = new VirtioNetDriver({ vifId: 'b', vif: sb, doorbell: this.rig.doorbell });
    this.h = new MockDriver(sh, this.rig.doorbell);
    // Record every device the engine starts for H, including one that starts and meets a
    // violation within the same step (observation only: the engine's behaviour is unchanged).
    const v = this.rig.engine.vifs[SLOT_H]!;
    let cur = v.dev;
    Object.defineProperty(v, 'dev', {
      configurable: true,
      get: () => cur,
      set: (d: VirtioNetDevice | null) => {
        cur = d;
        if (d !== null) this.started.push(d);
      },
    });
    this.h.init(init);
    this.h.kick();
    this.step();
  }

  /** Every device the engine has started for H, in order. */
  readonly started: VirtioNetDevice[] = [];

  hostileDev() {
    return this.rig.engine.vifs[SLOT_H]!.dev;
  }

  /** One engine iteration (after `pre`, e.g. a sweep), checking every per-step invariant. */
  step(pre?: () => void): void {
    const { rig, h } = this;
    const f0 = Float64Array.from(rig.f64);
    const c0 = rig.vifCounters(SLOT_H);
    const dev0 = this.hostileDev();
    const q0 = dev0 && { tx: snap(dev0.fromGuestQ), rx: snap(dev0.toGuestQ) };
    const avail0 = { tx: h.tx.publishedAvail, rx: h.rx.publishedAvail };
    const mem0 = { tx: h.tx.usedIdx(), rx: h.rx.usedIdx() };
    const ev0 = rig.events.length;
    const started0 = this.started.length;

    pre?.();
    const work = rig.step();

    assert.ok(Number.isInteger(work) && work >= 0, 'step() returns a work count');
    for (let i = 0; i < f0.length; i++) {
      assert.ok(rig.f64[i]! >= f0[i]! && Number.isInteger(rig.f64[i]), `counter #${i} only increases`);
    }
    const c1 = rig.vifCounters(SLOT_H);
    const dev1 = this.hostileDev();
    const added = { tx: 0, rx: 0 };
    for (const name of ['tx', 'rx'] as const) {
      const pick = (d: NonNullable<typeof dev0>): DeviceQueue => (name === 'tx' ? d.fromGuestQ : d.toGuestQ);
      const avail = avail0[name];
      let firstNew = 0;
      if (dev0 !== null) {
        const q = pick(dev0);
        const s = q0![name];
        const taken = (q.lastAvail - s.lastAvail) & 0xffff;
        const done = (q.usedIdx - s.usedIdx) & 0xffff;
        assert.ok(taken <= available(avail, s.lastAvail), `${name}: took ${taken} chains, at most ${available(avail, s.lastAvail)} were available`);
        assert.ok(done <= taken, `${name}: completed ${done} of ${taken} chains taken`);
        added[name] += done;
        firstNew = s.usedIdx;
      }
      for (const d of this.started.slice(started0)) {
        // A device started in this step (virtio 1.2, 3.1.1): its indices start at 0.
        const q = pick(d);
        assert.ok(q.lastAvail <= available(avail, 0), `${name}: new queue took ${q.lastAvail} chains of ${available(avail, 0)}`);
        assert.ok(q.usedIdx <= q.lastAvail);
        added[name] += q.usedIdx;
        firstNew = 0;
      }
      assert.ok(dev1 === null || dev1 === dev0 || dev1 === this.started.at(-1), 'the live device is the last one started');
      const mem1 = name === 'tx' ? h.tx.usedIdx() : h.rx.usedIdx();
      if (dev1 === null) {
        assert.equal(mem1, mem0[name], `${name}: a stopped queue publishes nothing`);
      } else {
        const q = pick(dev1);
        if (((q.usedIdx - firstNew) & 0xffff) !== 0) assert.equal(mem1, q.usedIdx, `${name}: used idx published`);
        for (let k = firstNew; k !== q.usedIdx; k = (k + 1) & 0xffff) {
          const e = (name === 'tx' ? h.tx : h.rx).usedElem(k);
          assert.ok(e.id < HQ, `${name}: used id ${e.id} is a descriptor index`);
          if (name === 'tx') assert.equal(e.len, 0, 'tx: completed with used len 0');
          else assert.ok(e.len === 0 || (e.len >= NET_HDR_BYTES + 14 && e.len <= TX_LIMIT), `rx: used len ${e.len}`);
        }
      }
    }
    // Each completed chain is counted exactly once.
    assert.equal(sum(c1, TX_OUTCOMES) - sum(c0, TX_OUTCOMES), added.tx, 'one transmit outcome per completed chain');
    assert.equal(sum(c1, RX_COMPLETIONS) - sum(c0, RX_COMPLETIONS), added.rx, 'one receive outcome per completed chain');
    // Each NEEDS_RESET: one proto_* step, one event for this slot, the status bit.
    // (A reset of H after NEEDS_RESET also reports 'recovered': only H may do either.)
    for (const e of rig.events.slice(ev0)) assert.equal(e.slot, SLOT_H, 'only the hostile VIF is ever reset');
    const events = rig.events.slice(ev0).filter((e) => e.type === 'needs-reset');
    assert.equal(sum(c1, PROTO) - sum(c0, PROTO), events.length, 'one proto_* step per needs-reset event');
    if (events.length > 0) {
      assert.equal(rig.engine.vifs[SLOT_H]!.state, VifState.NEEDS_RESET);
      assert.equal(h.status() & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET);
    }
    this.goodPairClean();
  }

  /** The good VIFs are live and have no drop or violation counted, and nothing is unaccounted. */
  goodPairClean(): void {
    for (const s of [SLOT_A, SLOT_B]) {
      assert.equal(this.rig.engine.vifs[s]!.state, VifState.LIVE);
      const c = this.rig.vifCounters(s);
      for (const k of [...VIF_DROP_COUNTERS, ...PROTO, 'resets'] as const) assert.equal(c[k], 0, `good VIF ${s}: ${k}`);
    }
    assert.equal(this.rig.unaccounted(), 0, 'every frame that entered the switch is delivered or counted');
  }

  /** Take every frame waiting at a good driver; anything but `expect` must come from H. */
  drain(d: VirtioNetDriver, expect?: Uint8Array): number {
    let seen = 0;
    const n = d.receive();
    for (let i = 0; i < n; i++) {
      const f = d.frame(i);
      if (expect && f.length === expect.length && Buffer.compare(f, expect) === 0) seen++;
      else assert.equal(formatMac(f, 6), MAC_H, 'a good VIF only receives frames from its peer or from H');
    }
    d.release();
    return seen;
  }

  /** A -> B and B -> A each deliver their frame. */
  goodPairPasses(): void {
    this.drain(this.a);
    this.drain(this.b);
    for (const [from, to, src, dst] of [[this.a, this.b, MAC_A, MAC_B], [this.b, this.a, MAC_B, MAC_A]] as const) {
      const f = ethFrame(dst, src, 60, ++this.seq);
      assert.equal(from.send(f), true);
      this.step();
      assert.equal(this.drain(to, f), 1, `${dst} received the frame from ${src}`);
    }
  }

  // ---- the hostile guest's writes --------------------------------------------------------

  applyStatus(s: StatusAction): void {
    const h = this.h;
    switch (s.kind) {
      case 'none':
        return;
      case 'reset':
        if (s.seen) {
          h.setStatus(0);
          h.kick();
          this.step();
        }
        h.init(s.f);
        return;
      case 'word':
        h.setStatus(s.value);
        return;
      case 'features':
        h.setDriverFeatures(s.f);
        return;
    }
  }

  writePackets(ps: Packet[]): void {
    ps.forEach((p, k) => {
      this.packetLen[k] = this.h.writePacket(txBuf(k), ethFrame(p.dst, p.src, p.len, k), p.hdr);
    });
  }

  writeQueue(name: 'tx' | 'rx', w: QueueWrite): void {
    const q = name === 'tx' ? this.h.tx : this.h.rx;
    w.descs.forEach((d, i) => {
      if (d.kind === 'raw') q.setDesc(i, d.addr, d.len, d.flags, d.next, d.addrHi);
      else if (name === 'tx') q.setDesc(i, txBuf(d.k), this.packetLen[d.k]!, d.flags, d.next);
      else q.setDesc(i, rxBuf(d.k), L.bufferBytes, d.flags, d.next);
    });
    w.heads.forEach((head, i) => (q.avail16[2 + i] = head));
    q.avail16[0] = w.availFlags;
    q.avail16[2 + HQ] = w.usedEvent;
    if (w.usedIdx !== null) Atomics.store(q.used16, 1, w.usedIdx);
    q.publish(q.availIdx + w.delta);
  }

  /** The documented way back: status 0 seen by the device, re-initialise, kick. */
  recover(): void {
    const h = this.h;
    h.setStatus(0);
    h.kick();
    this.step();
    assert.equal(this.rig.engine.vifs[SLOT_H]!.state, VifState.WAITING);
    h.init();
    h.kick();
    this.step();
    assert.equal(this.rig.engine.vifs[SLOT_H]!.state, VifState.LIVE, 'a reset always brings the VIF back');
    this.drain(this.a);
    this.drain(this.b);
    const f = ethFrame(MAC_B, MAC_H, 64, ++this.seq);
    h.sendGood(0, f);
    h.kick();
    this.step();
    assert.deepEqual(h.tx.takeUsed(), [{ id: 0, len: 0 }]);
    assert.equal(this.drain(this.b, f), 1, 'B receives from the reset VIF');
    h.postRx(1);
    h.kick();
    const g = ethFrame(MAC_H, MAC_A, 70, ++this.seq);
    assert.equal(this.a.send(g), true);
    this.step();
    const used = h.rx.takeUsed();
    assert.equal(used.length, 1);
    assert.equal(used[0]!.len, NET_HDR_BYTES + g.length);
    assert.deepEqual(h.rxFrame(used[0]!), g);
  }
}

function snap(q: DeviceQueue): { lastAvail: number; usedIdx: number } {
  return { lastAvail: q.lastAvail, usedIdx: q.usedIdx };
}

/** Chains the device may take: avail idx - last_avail, or none when that is a jump (2.7.6). */
function available(availIdx: number, lastAvail: number): number {
  const n = (availIdx - lastAvail) & 0xffff;
  return n > HQ ? 0 : n;
}

test('random ring contents from a hostile guest never break the device or its neighbours', () => {
  fc.assert(
    fc.property(runArb, ({ init, rounds }) => {
      const w = new World(init);
      w.goodPairPasses();
      for (const r of rounds) {
        const hRx0 = sum(w.rig.vifCounters(SLOT_H), RX_OUTCOMES);
        w.applyStatus(r.status);
        w.writePackets(r.packets);
        w.writeQueue('tx', r.tx);
        w.writeQueue('rx', r.rx);
        if (r.kick) w.h.kick();
        for (let i = 0; i < r.aToH; i++) assert.equal(w.a.send(ethFrame(MAC_H, MAC_A, 60 + i, ++w.seq)), true);
        w.step(r.sweep ? () => w.rig.engine.sweep() : undefined);
        w.step();
        w.step();
        // Every frame A sent to H was delivered to H or dropped with an H receive counter.
        assert.equal(sum(w.rig.vifCounters(SLOT_H), RX_OUTCOMES) - hRx0, r.aToH, 'frames for H are delivered or counted');
        w.goodPairPasses();
      }
      w.recover();
      w.goodPairPasses();
    }),
    // Replay a failure with SVNIC_FC_SEED=<seed> (and SVNIC_FC_PATH=<path>) from the report.
    {
      numRuns: 200,
      includeErrorInReport: true,
      ...(process.env.SVNIC_FC_SEED ? { seed: Number(process.env.SVNIC_FC_SEED) } : {}),
      ...(process.env.SVNIC_FC_PATH ? { path: process.env.SVNIC_FC_PATH } : {}),
    },
  );
});
