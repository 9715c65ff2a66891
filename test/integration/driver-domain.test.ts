/**
 * The driver-domain baseline on real workers: the same guest programs, the same traffic, once on
 * the direct path (VIFs on the device) and once through a driver domain (netfront/netback, bridge,
 * one NIC VIF). Both must deliver the same frames to the same receivers, and on both every frame a
 * guest sent is delivered or counted (sent = tx_frames + tx drops; every device and the driver
 * domain have unaccounted() = 0). Behaviour only: nothing here measures time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Hypervisor, Wire, VIF_DROP_COUNTERS, type Guest } from '../../src/index.js';
import { DriverDomain } from '../../src/baseline/driver-domain.js';
import { until } from '../helpers/until.js';

const EXCHANGE = new URL('../guests/exchange.js', import.meta.url).href;
const MAC_G1 = '02:00:00:00:01:01';
const MAC_G2 = '02:00:00:00:01:02';
const MAC_P = '02:00:00:00:02:01';
const BCAST = 'ff:ff:ff:ff:ff:ff';
const K = 300; // frames per flow; receive queues hold 1024, so no receiver can overflow

type Path = 'svnic' | 'driver-domain';

interface Outcome {
  got: Record<string, string[]>;
  sent: Record<string, number>;
  /** Per guest: frames sent = accepted by the device or netback + counted transmit drops. */
  txBalanced: Record<string, boolean>;
  unaccounted: Record<string, number>;
  bridge?: Record<string, number>;
}

const txDrops = (c: Record<string, number>): number =>
  VIF_DROP_COUNTERS.filter((k) => k.startsWith('tx_')).reduce((s, k) => s + c[k]!, 0);

async function run(path: Path): Promise<Outcome> {
  const hv = new Hypervisor();
  const host = await hv.createDevice({ name: `host-${path}` });
  const peer = await hv.createDevice({ name: `peer-${path}` });
  await Wire.connect(host, peer);
  let dd: DriverDomain | null = null;
  const guests: Record<string, Guest> = {};
  try {
    const counters: Record<string, () => Record<string, number>> = {};
    if (path === 'driver-domain') dd = await DriverDomain.create(hv, host, { nicQueueSize: 1024 });
    for (const [name, mac] of [['g1', MAC_G1], ['g2', MAC_G2]] as const) {
      const g = await hv.startGuest({ name: `${name}-${path}`, module: EXCHANGE });
      guests[name] = g;
      if (dd) {
        const n = await dd.createVifFor(g, { mac, queueSize: 1024 });
        counters[name] = () => n.counters();
      } else {
        const v = await hv.createVifFor(g, host, { mac, queueSize: 1024 });
        counters[name] = () => v.counters();
      }
    }
    const p = await hv.startGuest({ name: `p-${path}`, module: EXCHANGE });
    guests.p = p;
    const pv = await hv.createVifFor(p, peer, { mac: MAC_P, queueSize: 1024 });
    counters.p = () => pv.counters();

    const send = async (g: Guest, dst: string, count: number, first: number, bytes: number) => {
      const n = g.reports.length;
      g.send({ cmd: 'send', dst, count, first, bytes });
      return (await g.report<{ kind: string; sent: number }>((r) => r.kind === 'sent' && g.reports.indexOf(r) >= n)).sent;
    };
    const sent: Record<string, number> = { g1: 0, g2: 0, p: 0 };
    // The peer host announces itself first (as ARP would), so a learning bridge knows its port.
    sent.p! += await send(p, BCAST, 1, 0, 60);
    sent.g1! += await send(guests.g1!, MAC_P, K, 1000, 64); // to the peer host, over the wire
    sent.g1! += await send(guests.g1!, BCAST, 10, 5000, 60); // flooded: g2 and the peer host
    sent.p! += await send(p, MAC_G2, K, 2000, 1514); // from the wire to a guest, full-size
    sent.g2! += await send(guests.g2!, MAC_G1, K, 3000, 200); // guest to guest on the same host
    const expected = { g1: 1 + K, g2: 1 + 10 + K, p: K + 10 };
    const collect = async (g: Guest) => {
      const n = g.reports.length;
      g.send({ cmd: 'collect' });
      return (await g.report<{ kind: string; got: string[] }>((r) => r.kind === 'got' && g.reports.indexOf(r) >= n)).got;
    };
    const got: Record<string, string[]> = {};
    await until(async () => {
      for (const k of ['g1', 'g2', 'p'] as const) got[k] = await collect(guests[k]!);
      return got.g1!.length >= expected.g1 && got.g2!.length >= expected.g2 && got.p!.length >= expected.p;
    }, `all frames delivered on the ${path} path`);
    await new Promise((r) => setTimeout(r, 50)); // let any stray extra frame arrive, so a surplus shows
    for (const k of ['g1', 'g2', 'p'] as const) got[k] = (await collect(guests[k]!)).sort();
    await host.sync();
    await peer.sync();
    if (dd) await dd.sync();
    const txBalanced: Record<string, boolean> = {};
    for (const k of ['g1', 'g2', 'p'] as const) {
      const c = counters[k]!();
      txBalanced[k] = sent[k] === c.tx_frames! + txDrops(c);
    }
    const unaccounted: Record<string, number> = { host: host.unaccounted(), peer: peer.unaccounted() };
    if (dd) unaccounted.dd = dd.unaccounted();
    return { got, sent, txBalanced, unaccounted, bridge: dd?.bridgeCounters() };
  } finally {
    for (const g of Object.values(guests)) g.send({ cmd: 'exit' });
    await Promise.all(Object.values(guests).map((g) => g.done().catch(() => {})));
    if (dd) await dd.stop();
    await hv.stop();
  }
}

test('the driver-domain path delivers the same frames with the same accounting as the direct path', async () => {
  const direct = await run('svnic');
  const viaDd = await run('driver-domain');
  for (const o of [direct, viaDd]) {
    assert.deepEqual(o.txBalanced, { g1: true, g2: true, p: true }, 'sent = accepted + counted drops for every guest');
    for (const [k, v] of Object.entries(o.unaccounted)) assert.equal(v, 0, `${k}: every frame delivered or counted`);
    assert.equal(o.got.g1!.length, 1 + K);
    assert.equal(o.got.g2!.length, 1 + 10 + K);
    assert.equal(o.got.p!.length, K + 10);
  }
  assert.deepEqual(viaDd.got, direct.got, 'the same frames (source, sequence, length) reach the same receivers');
  assert.deepEqual(viaDd.sent, direct.sent);
  // The bridge learnt the peer host on its NIC port from the announcement and flooded nothing else.
  assert.equal(viaDd.bridge!.fdb_learned, 1);
  assert.equal(viaDd.bridge!.flood_unknown, 0);
});

test('a driver domain reclaims the netif of a guest that exits, and others keep their traffic', async () => {
  const hv = new Hypervisor();
  const host = await hv.createDevice();
  const dd = await DriverDomain.create(hv, host);
  try {
    const a = await hv.startGuest({ module: EXCHANGE });
    const b = await hv.startGuest({ module: EXCHANGE });
    const c = await hv.startGuest({ module: EXCHANGE });
    const na = await dd.createVifFor(a);
    const nb = await dd.createVifFor(b);
    const nc = await dd.createVifFor(c);
    await a.terminate();
    await until(() => na.state === 'destroyed', 'netif of the exited guest reclaimed');
    b.send({ cmd: 'send', dst: nc.mac, count: 50, first: 0, bytes: 64 });
    await until(() => nc.counters().rx_frames === 50, 'b -> c still delivered');
    assert.equal(nb.counters().tx_frames, 50);
    await dd.sync();
    assert.equal(dd.unaccounted(), 0);
    b.send({ cmd: 'exit' });
    c.send({ cmd: 'exit' });
  } finally {
    await dd.stop();
    await hv.stop();
  }
});

const STREAM = new URL('../guests/stream.js', import.meta.url).href;

test('hot-unplug of a netif under traffic loses no frame without a counter', async () => {
  const hv = new Hypervisor();
  const host = await hv.createDevice();
  const dd = await DriverDomain.create(hv, host);
  try {
    const a = await hv.startGuest({ module: STREAM });
    const b = await hv.startGuest({ module: STREAM });
    const na = await dd.createVifFor(a);
    const nb = await dd.createVifFor(b);
    a.send({ cmd: 'stream', dst: nb.mac });
    b.send({ cmd: 'stream', dst: na.mac });
    await until(() => na.counters().rx_frames > 1000 && nb.counters().rx_frames > 1000, 'traffic both ways through the bridge');
    await dd.unplug(na);
    assert.equal(na.state, 'destroyed');
    const stop = async (g: Guest) => {
      const n = g.reports.length;
      g.send({ cmd: 'stop' });
      return g.report<{ sent: number; unplugged: boolean }>((r) => g.reports.indexOf(r) >= n);
    };
    const ra = await stop(a);
    assert.equal(ra.unplugged, true);
    const ca = na.counters();
    assert.equal(ra.sent, ca.tx_frames + txDrops(ca), `a: sent ${ra.sent} = accepted ${ca.tx_frames} + drops ${txDrops(ca)}`);
    // b keeps sending to a's MAC, now unknown to the bridge: flooded, i.e. out by the NIC.
    const out = dd.counters().uplink_tx_frames;
    await until(() => dd.counters().uplink_tx_frames > out + 100, 'frames to the unplugged MAC go out by the NIC');
    const rb = await stop(b);
    await until(() => {
      const cb = nb.counters();
      return rb.sent === cb.tx_frames + txDrops(cb);
    }, 'b: sent = accepted + counted drops');
    await dd.sync();
    await host.sync();
    await until(() => dd.unaccounted() === 0 && host.unaccounted() === 0, 'bridge and device accounting balance');
  } finally {
    await dd.stop();
    await hv.stop();
  }
});
