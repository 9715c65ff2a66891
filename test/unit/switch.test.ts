/**
 * The device's switch and per-VIF settings, driven in-process: multicast filters, promiscuous
 * mode, segments, link state, MTU, MAC changes at runtime and interrupt coalescing. Every case uses
 * the real guest driver on each VIF and an engine stepped by hand with an explicit clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rig, ethFrame } from '../helpers/mock-driver.js';
import { VirtioNetDriver } from '../../src/guest/driver.js';
import { H, i32 } from '../../src/layout/vif.js';

const MAC = ['02:00:00:00:00:0a', '02:00:00:00:00:0b', '02:00:00:00:00:0c', '02:00:00:00:00:0d'];
const GROUP = '01:00:5e:00:00:01';
const BCAST = 'ff:ff:ff:ff:ff:ff';

function world(opts: { segments?: number[]; promiscuous?: boolean[] } = {}) {
  const rig = new Rig();
  const nics = MAC.map((mac, slot) => {
    const sab = rig.addVif(slot, mac, { segment: opts.segments?.[slot] ?? 0, promiscuous: opts.promiscuous?.[slot] ?? false });
    return new VirtioNetDriver({ vifId: `v${slot}`, vif: sab, doorbell: rig.doorbell });
  });
  rig.step();
  /** Frames each VIF received since the last call (and releases them). */
  const got = (): number[] => nics.map((n) => {
    const k = n.receive();
    n.release();
    return k;
  });
  return { rig, nics, got, send: (from: number, f: Uint8Array) => { assert.ok(nics[from]!.send(f)); rig.step(); } };
}

test('multicast reaches only the VIFs that joined the group; broadcast reaches all; both leave by the uplink', () => {
  const w = world();
  w.rig.engine.changeVif({ slot: 2, multicast: [GROUP] });
  w.got();
  const up = w.rig.engineCounters().uplink_tx_frames;
  w.send(0, ethFrame(GROUP, MAC[0]!));
  assert.deepEqual(w.got(), [0, 0, 1, 0]);
  w.send(0, ethFrame(BCAST, MAC[0]!));
  assert.deepEqual(w.got(), [0, 1, 1, 1]);
  assert.equal(w.rig.engineCounters().uplink_tx_frames - up, 2);
  assert.equal(w.rig.unaccounted(), 0);
});

test('a promiscuous VIF also sees unicast between others; a normal VIF does not', () => {
  const w = world({ promiscuous: [false, true, false, false] });
  w.send(0, ethFrame(MAC[2]!, MAC[0]!));
  assert.deepEqual(w.got(), [0, 1, 1, 0]);
  w.rig.engine.changeVif({ slot: 1, promiscuous: false });
  w.send(0, ethFrame(MAC[2]!, MAC[0]!));
  assert.deepEqual(w.got(), [0, 0, 1, 0]);
  assert.equal(w.rig.unaccounted(), 0);
});

test('segments are separate broadcast domains', () => {
  const w = world({ segments: [0, 0, 1, 1] });
  w.send(0, ethFrame(BCAST, MAC[0]!));
  assert.deepEqual(w.got(), [0, 1, 0, 0]);
  w.send(2, ethFrame(BCAST, MAC[2]!));
  assert.deepEqual(w.got(), [0, 0, 0, 1]);
  // A unicast to a MAC of another segment is unknown here: it goes to the uplink.
  const up = w.rig.engineCounters().uplink_tx_frames;
  w.send(0, ethFrame(MAC[3]!, MAC[0]!));
  assert.deepEqual(w.got(), [0, 0, 0, 0]);
  assert.equal(w.rig.engineCounters().uplink_tx_frames - up, 1);
});

test('link down drops both ways with named counters, and the driver sees the link state', () => {
  const w = world();
  w.rig.engine.changeVif({ slot: 1, linkUp: false });
  assert.equal(w.nics[1]!.linkUp, false);
  w.send(0, ethFrame(MAC[1]!, MAC[0]!));
  w.send(1, ethFrame(MAC[0]!, MAC[1]!));
  assert.deepEqual(w.got(), [0, 0, 0, 0]);
  assert.equal(w.rig.vifCounters(1).rx_link_down, 1);
  assert.equal(w.rig.vifCounters(1).tx_link_down, 1);
  w.rig.engine.changeVif({ slot: 1, linkUp: true });
  assert.equal(w.nics[1]!.linkUp, true);
  w.send(0, ethFrame(MAC[1]!, MAC[0]!));
  assert.deepEqual(w.got(), [0, 1, 0, 0]);
  assert.equal(w.rig.unaccounted(), 0);
});

test('a lower MTU drops larger frames to and from the VIF, counted', () => {
  const w = world();
  w.rig.engine.changeVif({ slot: 1, mtu: 100 });
  assert.equal(w.nics[1]!.mtu, 100);
  w.send(0, ethFrame(MAC[1]!, MAC[0]!, 14 + 4 + 101));
  assert.equal(w.rig.vifCounters(1).rx_oversize, 1);
  w.send(0, ethFrame(MAC[1]!, MAC[0]!, 14 + 4 + 100));
  assert.deepEqual(w.got(), [0, 1, 0, 0]);
  w.send(1, ethFrame(MAC[0]!, MAC[1]!, 14 + 4 + 101));
  assert.equal(w.rig.vifCounters(1).tx_oversize, 1);
  assert.deepEqual(w.got(), [0, 0, 0, 0]);
});

test('a MAC changed at runtime takes effect for switching and anti-spoofing', () => {
  const w = world();
  const NEW = '02:00:00:00:00:99';
  w.rig.engine.changeVif({ slot: 1, mac: NEW });
  w.rig.engine.setFdb([0, 1, 2, 3].map((s) => ({ segment: 0, mac: s === 1 ? NEW : MAC[s]!, slot: s })), [0, 0, 0, 0]);
  assert.equal(w.nics[1]!.mac, NEW);
  w.send(0, ethFrame(NEW, MAC[0]!));
  assert.deepEqual(w.got(), [0, 1, 0, 0]);
  w.send(1, ethFrame(MAC[0]!, MAC[1]!)); // the old MAC is now someone else's
  assert.equal(w.rig.vifCounters(1).tx_spoofed_mac, 1);
  w.send(1, ethFrame(MAC[0]!, NEW));
  assert.deepEqual(w.got(), [1, 0, 0, 0]);
});

test('interrupt coalescing holds an interrupt until N frames or T microseconds', () => {
  const w = world();
  const irq = () => Atomics.load(new Int32Array(w.nics[1]!.sab), i32(H.IRQ));
  const arm = () => {
    w.nics[1]!.receive();
    w.nics[1]!.release();
    assert.equal(w.nics[1]!.pollRx(), false);
    void w.nics[1]!.wait(0); // arms the receive queue's used_event (virtio 1.2, 2.7.10)
  };
  w.rig.engine.changeVif({ slot: 1, coalesce: { frames: 4, usecs: 1000 } });
  arm();
  const i0 = irq();
  let t = 100;
  const step = (dt: number) => w.rig.engine.step((t += dt));
  // by frame count: the 4th frame releases the interrupt
  for (let k = 0; k < 3; k++) {
    assert.ok(w.nics[0]!.send(ethFrame(MAC[1]!, MAC[0]!)));
    step(0.01);
  }
  assert.equal(irq(), i0, 'held while fewer than 4 frames and under 1000 µs');
  assert.ok(w.nics[0]!.send(ethFrame(MAC[1]!, MAC[0]!)));
  step(0.01);
  assert.equal(irq(), i0 + 1);
  assert.equal(w.rig.vifCounters(1).irq_coalesced, 3);
  // by time: one frame, then the clock passes 1000 µs
  arm();
  assert.ok(w.nics[0]!.send(ethFrame(MAC[1]!, MAC[0]!)));
  step(0.01);
  step(0.5);
  assert.equal(irq(), i0 + 1, 'held at 500 µs');
  step(0.6);
  assert.equal(irq(), i0 + 2, 'released after 1000 µs');
});

test('the echo uplink returns a frame sent to the uplink with its MACs swapped, counted both ways', () => {
  const w = world();
  w.rig.engine.sw.reflect = true;
  const REMOTE = '02:be:ef:00:00:01';
  const f = ethFrame(REMOTE, MAC[0]!, 80, 7);
  w.send(0, f);
  assert.equal(w.nics[0]!.receive(), 1);
  const back = w.nics[0]!.frame(0);
  assert.deepEqual(back.subarray(0, 6), f.subarray(6, 12));
  assert.deepEqual(back.subarray(6, 12), f.subarray(0, 6));
  assert.deepEqual(back.subarray(12), f.subarray(12));
  w.nics[0]!.release();
  // A broadcast echoes back as a unicast to its sender (and still reaches the segment once).
  w.send(0, ethFrame(BCAST, MAC[0]!));
  assert.deepEqual(w.got(), [1, 1, 1, 1]);
  const e = w.rig.engineCounters();
  assert.equal(e.uplink_tx_frames, 2);
  assert.equal(e.uplink_rx_frames, 2);
  assert.equal(w.rig.unaccounted(), 0);
});
