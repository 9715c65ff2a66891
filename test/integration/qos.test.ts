/**
 * QoS on real worker threads: a rate-limited VIF's guest is held back (its ring stays full, no
 * frame is dropped) and every frame is accounted for; limits change under traffic; admission
 * control refuses guarantees beyond the capacity, naming the VIFs. Rates are not asserted here:
 * the token buckets run on the engine's clock, read once per loop iteration, so on a loaded
 * machine a rate measured on another thread's clock can exceed the limit by the time the engine
 * was descheduled within one iteration (docs/qos.md). The exact rates are checked with a fake
 * clock in test/unit/qos-engine.test.ts and measured by `svnic bench qos`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Hypervisor, SvnicError, VIF_DROP_COUNTERS } from '../../src/index.js';
import type { StreamReport } from '../guests/stream.js';
import { until } from '../helpers/until.js';

const STREAM = new URL('../guests/stream.js', import.meta.url).href;
const txDrops = (c: Record<string, number>): number =>
  VIF_DROP_COUNTERS.filter((k) => k.startsWith('tx_')).reduce((s, k) => s + c[k]!, 0);

test('a rate-limited guest sees backpressure, not drops; the limit holds and changes under traffic', async () => {
  const hv = new Hypervisor();
  try {
    const dev = await hv.createDevice({ engines: 1 });
    const g = await hv.startGuest({ module: STREAM });
    const free = await hv.startGuest({ module: STREAM });
    const v = await hv.createVifFor(g, dev, { qos: { guestTx: { framesPerSec: 2000, burstFrames: 32 } } });
    const vf = await hv.createVifFor(free, dev); // an unlimited neighbour on the same engine
    g.send({ cmd: 'stream', dst: '02:be:ef:00:00:01' }); // unknown: to the (null) uplink
    free.send({ cmd: 'stream', dst: '02:be:ef:00:00:02' });
    await until(() => v.counters().tx_frames > 400, 'limited traffic flowing');
    await until(() => vf.counters().tx_frames > 20_000, 'the neighbour is not held back');
    let c = v.counters();
    assert.ok(c.qos_tx_holds > 0, 'the engine held the VIF');
    assert.equal(vf.counters().qos_tx_holds, 0, 'but not its unlimited neighbour');
    assert.equal(txDrops(c), 0, 'no guest-TX drop');
    // raise the limit under traffic: the VIF speeds up without a restart
    const before = c.tx_frames;
    await dev.setVif(v.id, { qos: { guestTx: { framesPerSec: 20_000, burstFrames: 32 } } });
    await until(() => v.counters().tx_frames > before + 4000, 'faster after the change');
    const r = g.reports.length;
    g.send({ cmd: 'stop' });
    const rep = await g.report<StreamReport>((x) => g.reports.indexOf(x) >= r);
    c = v.counters();
    // the guest could only queue what the device took, plus one ring
    assert.ok(rep.sent - c.tx_frames <= v.queueSize, `sent ${rep.sent}, taken ${c.tx_frames}`);
    // the frames left in the ring drain at the limit; then every frame is accounted for
    await until(() => v.counters().tx_frames === rep.sent, `all ${rep.sent} frames taken`);
    const fr = free.reports.length;
    free.send({ cmd: 'stop' });
    const frep = await free.report<StreamReport>((x) => free.reports.indexOf(x) >= fr);
    await until(() => vf.counters().tx_frames + txDrops(vf.counters()) === frep.sent, 'neighbour accounted');
    assert.equal(txDrops(v.counters()), 0);
    await until(() => dev.unaccounted() === 0, 'switch accounting balances');
  } finally {
    await hv.stop();
  }
});

test('admission control refuses guarantees above the capacity and names the VIFs', async () => {
  const hv = new Hypervisor();
  try {
    const none = await hv.createDevice({ name: 'nocap' });
    await assert.rejects(none.createVif({ name: 'x', qos: { guaranteedBitsPerSec: 1e6 } }),
      (e: SvnicError) => e.code === 'QOS_NO_CAPACITY' && /"x"/.test(e.message));
    const dev = await hv.createDevice({ name: 'cap', qos: { capacityBitsPerSec: 100e6 } });
    await dev.createVif({ name: 'a', qos: { guaranteedBitsPerSec: 60e6 } });
    await assert.rejects(dev.createVif({ name: 'b', qos: { guaranteedBitsPerSec: 50e6 } }),
      (e: SvnicError) => e.code === 'QOS_OVERCOMMIT' && /"a" 60 Mbit\/s/.test(e.message) && /"b" 50 Mbit\/s/.test(e.message));
    assert.equal(dev.vifs().length, 1, 'the refused VIF was not created');
    const b = await dev.createVif({ name: 'b', qos: { guaranteedBitsPerSec: 40e6 } });
    await assert.rejects(dev.setVif(b.id, { qos: { guaranteedBitsPerSec: 41e6 } }), (e: SvnicError) => e.code === 'QOS_OVERCOMMIT');
    await assert.rejects(dev.setQos({ capacityBitsPerSec: 90e6 }), (e: SvnicError) => e.code === 'QOS_OVERCOMMIT' && /"a"/.test(e.message));
    await dev.setQos({ capacityBitsPerSec: 200e6 });
    await dev.setVif(b.id, { qos: { guaranteedBitsPerSec: 140e6 } });
    await assert.rejects(dev.createVif({ qos: { weight: 0 } }), (e: SvnicError) => e.code === 'BAD_QOS');
    await assert.rejects(dev.createVif({ qos: { guestTx: { bitsPerSec: 1e6 }, guaranteedBitsPerSec: 2e6 } }), (e: SvnicError) => e.code === 'BAD_QOS');
    await assert.rejects(dev.createVif({ qos: { priority: 9 } }), (e: SvnicError) => e.code === 'BAD_QOS');
  } finally {
    await hv.stop();
  }
});

test('svnic run configs apply QoS to devices and VIFs', async () => {
  const { validateConfig } = await import('../../src/config/schema.js');
  const { applyConfig } = await import('../../src/config/apply.js');
  const config = validateConfig({
    device: { name: 'd', qos: { capacityBitsPerSec: 1e9 } },
    guests: [{ name: 'g', module: STREAM, vifs: [{ name: 'v', qos: { weight: 3, guestTx: { framesPerSec: 5000 }, guaranteedBitsPerSec: 1e8 } }] }],
  });
  const run = await applyConfig(config, { startMessage: undefined });
  try {
    assert.equal(run.devices.get('d')!.qos.capacityBitsPerSec, 1e9);
    assert.deepEqual(run.vifs.get('v')!.settings.qos, { weight: 3, guestTx: { framesPerSec: 5000 }, guaranteedBitsPerSec: 1e8 });
    // and the engine holds the VIF to its limit
    const g = run.guests.get('g')!;
    const v = run.vifs.get('v')!;
    g.send({ cmd: 'stream', dst: '02:be:ef:00:00:03' });
    await until(() => v.counters().qos_tx_holds > 0, 'the limit holds the VIF');
    assert.equal(txDrops(v.counters()), 0);
  } finally {
    await run.stop();
  }
});

test('with two engines, guarantees are admitted against the device\'s capacity, wherever the VIFs are', async () => {
  const hv = new Hypervisor();
  try {
    const dev = await hv.createDevice({ engines: 2, qos: { capacityBitsPerSec: 100e6 } });
    await dev.createVif({ name: 'a', engine: 0, qos: { guaranteedBitsPerSec: 40e6 } });
    await dev.createVif({ name: 'b', engine: 0, qos: { guaranteedBitsPerSec: 30e6 } });
    await assert.rejects(dev.createVif({ name: 'c', engine: 1, qos: { guaranteedBitsPerSec: 31e6 } }),
      (e: SvnicError) => e.code === 'QOS_OVERCOMMIT' && /"a" 40 Mbit\/s, "b" 30 Mbit\/s, "c" 31 Mbit\/s/.test(e.message));
    await dev.createVif({ name: 'c', engine: 1, qos: { guaranteedBitsPerSec: 30e6 } });
  } finally {
    await hv.stop();
  }
});
