/**
 * Integration tests: device engines, the hypervisor and guests on real worker threads. They check
 * behaviour and accounting (frames sent = delivered + counted drops), never speed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Hypervisor, Wire, VIF_DROP_COUNTERS, type Device, type Vif, type Guest } from '../../src/index.js';
import { runDemo, DEMO_DEFAULTS } from '../../src/demo/run-demo.js';
import type { StreamReport } from '../guests/stream.js';
import { until } from '../helpers/until.js';

const STREAM = new URL('../guests/stream.js', import.meta.url).href;
const HELLO = new URL('../../examples/hello-guest.js', import.meta.url).href;

const txDrops = (c: Record<string, number>): number =>
  VIF_DROP_COUNTERS.filter((k) => k.startsWith('tx_')).reduce((s, k) => s + c[k]!, 0);

async function stopAndReport(g: Guest): Promise<StreamReport> {
  const n = g.reports.length;
  g.send({ cmd: 'stop' });
  return g.report<StreamReport>((r) => g.reports.indexOf(r) >= n);
}

for (const [engines, interruptMode] of [[1, 'direct'], [2, 'hypervisor']] as const) {
  test(`demo traffic accounts for every frame (${engines} engine(s), ${interruptMode} interrupts)`, async () => {
    const r = await runDemo({ ...DEMO_DEFAULTS, frames: 300, broadcasts: 20, spoofs: 25, pings: 40, engines, interruptMode });
    assert.equal(r.unaccounted, 0, JSON.stringify(r.drops));
    assert.equal(r.phases.spoof.blocked, 25);
    assert.equal(r.phases.spoof.receivedByVictims, 0);
    assert.equal(r.phases.pingPong.answered, 40);
    for (const v of r.vifs) {
      assert.equal(v.received, v.rxDelivered, `${v.vif}: the guest read every frame the device delivered`);
      assert.equal(v.sent, v.txAccepted + Object.entries(v.drops).filter(([k]) => k.startsWith('tx_')).reduce((s, [, n]) => s + n, 0), `${v.vif}: sent = accepted + tx drops`);
    }
    assert.ok(r.phases.allToAll.frames > 0);
    assert.equal(r.toUplink, r.phases.broadcast.sent, 'every broadcast also leaves by the (null) uplink');
  });
}

async function setup(n: number, opts: Parameters<Hypervisor['createDevice']>[0] = {}): Promise<{ hv: Hypervisor; dev: Device; guests: Guest[]; vifs: Vif[] }> {
  const hv = new Hypervisor();
  const dev = await hv.createDevice(opts);
  const guests: Guest[] = [];
  const vifs: Vif[] = [];
  for (let i = 0; i < n; i++) {
    const g = await hv.startGuest({ module: STREAM });
    guests.push(g);
    vifs.push(await hv.createVifFor(g, dev));
  }
  return { hv, dev, guests, vifs };
}

test('a guest killed mid-traffic has its VIF reclaimed; other guests keep going', async () => {
  const { hv, dev, guests: [a, , c], vifs: [va, vb, vc, vd] } = await setup(4, { engines: 1 });
  try {
    a!.send({ cmd: 'stream', dst: vb!.mac });
    c!.send({ cmd: 'stream', dst: vd!.mac });
    await until(() => vb!.counters().rx_frames > 1000 && vd!.counters().rx_frames > 1000, 'traffic flowing');
    await a!.terminate();
    await until(() => va!.state === 'destroyed', 'VIF of the killed guest reclaimed');
    assert.ok(!dev.vifs().includes(va!));
    const before = vd!.counters().rx_frames;
    await until(() => vd!.counters().rx_frames > before + 1000, 'c -> d continues after a was killed');
    const rc = await stopAndReport(c!);
    // The engine may still be taking c's last frames; everything c sent must end up counted.
    await until(() => {
      const cc = vc!.counters();
      return rc.sent === cc.tx_frames + txDrops(cc);
    }, `c: sent ${rc.sent} = accepted + counted drops`);
    await until(() => dev.unaccounted() === 0, 'switch accounting balances');
    // The killed guest's slot is free again and usable.
    const g = await hv.startGuest({ module: STREAM });
    const ve = await hv.createVifFor(g, dev);
    assert.equal(ve.slot, va!.slot);
  } finally {
    await hv.stop();
  }
});

test('hot-unplug under traffic loses no frame without a counter', async () => {
  const { hv, dev, guests: [a, b], vifs: [va, vb] } = await setup(2, { engines: 2 });
  try {
    a!.send({ cmd: 'stream', dst: vb!.mac });
    b!.send({ cmd: 'stream', dst: va!.mac });
    await until(() => va!.counters().rx_frames > 1000 && vb!.counters().rx_frames > 1000, 'traffic both ways');
    await hv.unplug(va!);
    assert.equal(va!.state, 'destroyed');
    const ra = await stopAndReport(a!);
    assert.equal(ra.unplugged, true);
    const ca = va!.counters();
    assert.equal(ra.sent, ca.tx_frames + txDrops(ca), `a: sent ${ra.sent} = accepted ${ca.tx_frames} + drops ${txDrops(ca)}`);
    // b keeps sending to a's MAC, now unknown: it goes to the uplink (a counted sink here).
    const up = dev.deviceCounters().uplink_tx_frames;
    await until(() => dev.deviceCounters().uplink_tx_frames > up + 100, 'frames to the unplugged MAC go to the uplink');
    const rb = await stopAndReport(b!);
    await until(() => {
      const cb = vb!.counters();
      return rb.sent === cb.tx_frames + txDrops(cb);
    }, `b: sent ${rb.sent} = accepted + counted drops`);
    await until(() => dev.unaccounted() === 0, 'switch accounting balances');
  } finally {
    await hv.stop();
  }
});

test('a reused VIF slot keeps the accounting whole; unplug racing a guest exit is safe', async () => {
  const { hv, dev, guests: [a, b], vifs: [va] } = await setup(2, { engines: 1 });
  try {
    a!.send({ cmd: 'stream', dst: '02:be:ef:00:00:01' }); // unknown: to the (null) uplink
    await until(() => va!.counters().tx_frames > 1000, 'traffic to the uplink');
    await Promise.all([hv.unplug(va!), a!.terminate()]); // both try to remove the VIF
    assert.equal(va!.state, 'destroyed');
    const g = await hv.startGuest({ module: STREAM });
    const vc = await hv.createVifFor(g, dev);
    assert.equal(vc.slot, va!.slot, 'the slot is reused');
    assert.equal(vc.counters().tx_frames, 0, 'with a fresh counter row');
    await until(() => dev.unaccounted() === 0, 'switch accounting balances across the reuse');
    // Plugging into a guest that has exited fails cleanly and leaves the VIF usable.
    await b!.terminate();
    const vd = await dev.createVif();
    await assert.rejects(hv.plug(b!, vd), { code: 'GUEST_EXITED' });
    assert.equal(vd.guestId, null);
    await hv.plug(g, vd);
  } finally {
    await hv.stop();
  }
});

test('two devices joined by a wire switch frames between their guests', async () => {
  const hv = new Hypervisor();
  try {
    const left = await hv.createDevice({ name: 'left', engines: 2 });
    const right = await hv.createDevice({ name: 'right', engines: 1 });
    await Wire.connect(left, right);
    const guests = [];
    for (const [dev, name] of [[left, 'l1'], [left, 'l2'], [right, 'r1']] as const) {
      const g = await hv.startGuest({ name, module: HELLO, args: { expect: 2 } });
      await hv.createVifFor(g, dev);
      guests.push(g);
    }
    for (const g of guests) g.send('go');
    const heard = await Promise.all(guests.map(async (g) => ((await g.done()) as { heard: string[] }).heard.sort()));
    assert.deepEqual(heard, [
      ['hello from l2', 'hello from r1'],
      ['hello from l1', 'hello from r1'],
      ['hello from l1', 'hello from l2'],
    ]);
    assert.ok(left.deviceCounters().uplink_rx_frames >= 1 && right.deviceCounters().uplink_rx_frames >= 2);
  } finally {
    await hv.stop();
  }
});

test('control-plane misuse gets typed errors with stable codes', async () => {
  const hv = new Hypervisor();
  try {
    const dev = await hv.createDevice({ maxVifs: 2 });
    await assert.rejects(dev.createVif({ mac: 'zz:00:00:00:00:01' }), { code: 'BAD_MAC' });
    await assert.rejects(dev.createVif({ mac: '01:00:5e:00:00:01' }), { code: 'BAD_MAC' });
    await assert.rejects(dev.createVif({ mtu: 9001 }), { code: 'BAD_MTU' });
    await assert.rejects(dev.createVif({ queueSize: 100 }), { code: 'BAD_QUEUE_SIZE' });
    const v = await dev.createVif({ mac: '02:00:00:00:00:01', mtu: 1500 });
    await assert.rejects(dev.createVif({ mac: '02:00:00:00:00:01' }), { code: 'DUPLICATE_MAC' });
    await dev.createVif();
    await assert.rejects(dev.createVif(), { code: 'DEVICE_FULL' });
    await assert.rejects(dev.setVif(v.id, { mtu: 9000 }), { code: 'BAD_MTU' });
    await assert.rejects(dev.setVif('nope', { linkUp: false }), { code: 'NO_SUCH_VIF' });
    await assert.rejects(dev.setVif(v.id, { coalesce: { frames: 0, usecs: 0 } }), { code: 'BAD_COALESCE' });
    assert.throws(() => hv.guest('nobody'), { code: 'NO_SUCH_GUEST' });
    for (const bad of [{ batch: 0 }, { ringSlots: 100 }, { sweepMs: 0 }, { spinUs: -1 }, { engines: 0 }, { maxVifs: 2000 }]) {
      await assert.rejects(hv.createDevice(bad), { code: 'BAD_OPTION' }, JSON.stringify(bad));
    }
    await dev.stop();
    await assert.rejects(dev.createVif(), { code: 'DEVICE_STOPPED' });
  } finally {
    await hv.stop();
  }
});
