/**
 * Two svnic devices joined by their VXLAN uplinks over loopback UDP (no root needed): guests on
 * two VNIs mapped to two segments reach their peers on the other device, never the other VNI;
 * flood-and-learn fills both tables; a VIF capture and an uplink capture produce pcap files with
 * the expected frames; counters balance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hypervisor } from '../../src/hypervisor/hypervisor.js';
import { VxlanUplink } from '../../src/uplink/vxlan.js';
import { captureVif } from '../../src/capture/vif-capture.js';
import { until } from '../helpers/until.js';
import { tempDir } from '../helpers/tmp.js';

const ECHO = new URL('../../src/guest/programs/echo.js', import.meta.url).href;

/** Frames in a classic pcap file: [incl_len, data] per record. */
function pcapFrames(file: string): Uint8Array[] {
  const b = readFileSync(file);
  assert.equal(b.readUInt32LE(0), 0xa1b2c3d4);
  const out: Uint8Array[] = [];
  for (let o = 24; o + 16 <= b.length;) {
    const n = b.readUInt32LE(o + 8);
    out.push(b.subarray(o + 16, o + 16 + n));
    o += 16 + n;
  }
  return out;
}

test('VXLAN over loopback: two devices, two VNIs, learning, isolation, captures', { timeout: 120_000 }, async () => {
  const dir = tempDir('sv4-vxlo-');
  const hv = new Hypervisor();
  const uplinks: VxlanUplink[] = [];
  try {
    const [a, b] = await Promise.all([hv.createDevice({ name: 'A' }), hv.createDevice({ name: 'B' })]);
    // ports chosen per run (pid) to avoid another test run on this machine
    const pa = 20000 + (process.pid % 20000);
    const pb = pa + 1;
    const ua = await VxlanUplink.attach(a, { local: '127.0.0.1', port: pa, dstPort: pb,
      vnis: [{ vni: 7, segment: 0, remotes: ['127.0.0.1'] }, { vni: 8, segment: 1, remotes: ['127.0.0.1'] }] });
    const ub = await VxlanUplink.attach(b, { local: '127.0.0.1', port: pb, dstPort: pa,
      vnis: [{ vni: 7, segment: 0, remotes: ['127.0.0.1'] }, { vni: 8, segment: 1, remotes: ['127.0.0.1'] }] });
    uplinks.push(ua, ub);
    await ua.capture(join(dir, 'a-outer.pcap'), 'outer');
    const g = async (name: string, dev: typeof a, ip: string, segment: number, mac: string) => {
      const guest = await hv.startGuest({ name, module: ECHO, args: { ip } });
      const vif = await hv.createVifFor(guest, dev, { name: `${name}-eth0`, segment, mac });
      await guest.report((r: any) => r.ready === true);
      return { guest, vif };
    };
    const a1 = await g('a1', a, '10.7.0.1/24', 0, '02:00:00:07:00:01');
    const b1 = await g('b1', b, '10.7.0.2/24', 0, '02:00:00:07:00:02');
    await g('a2', a, '10.7.0.11/24', 1, '02:00:00:08:00:11');
    const b2 = await g('b2', b, '10.7.0.12/24', 1, '02:00:00:08:00:12');
    await captureVif(a1.vif, join(dir, 'a1.pcap'));
    let tag = 0;
    const ping = async (x: typeof a1, ip: string, count = 3) => {
      const t = ++tag;
      x.guest.send({ ping: ip, count, timeoutMs: 2000, tag: t });
      return ((await x.guest.report((r: any) => r.tag === t)) as { rttMs: (number | null)[] }).rttMs;
    };
    assert.ok((await ping(a1, '10.7.0.2')).every((r) => r !== null), 'a1 -> b1 over VNI 7');
    assert.ok((await ping(b2, '10.7.0.11')).every((r) => r !== null), 'b2 -> a2 over VNI 8');
    assert.deepEqual(await ping(a1, '10.7.0.12', 1), [null], 'VNI 7 does not reach VNI 8');
    // UDP echo across the tunnel
    const t = ++tag;
    b1.guest.send({ udp: '10.7.0.1', port: 7, data: 'over vxlan', tag: t });
    assert.equal(((await b1.guest.report((r: any) => r.tag === t)) as { sent: unknown }).sent, true);
    const stats = async (x: typeof a1) => {
      const s = ++tag;
      x.guest.send({ stats: true, tag: s });
      return ((await x.guest.report((r: any) => r.tag === s)) as { stats: Record<string, number> }).stats;
    };
    await until(async () => (await stats(a1)).udp_delivered === 1, 'a1 got the datagram');
    await until(async () => (await stats(b1)).udp_no_socket === 1, 'the echo came back to b1 (its source port is closed by then, so counted)');

    const fa = await ua.fdb();
    assert.ok(fa.some((e) => e.vni === 7 && e.mac === '02:00:00:07:00:02' && e.vtep === '127.0.0.1'), JSON.stringify(fa));
    assert.ok(fa.some((e) => e.vni === 8 && e.mac === '02:00:00:08:00:12'), JSON.stringify(fa));
    const ca = ua.counters();
    for (const k of ['rx_short', 'rx_bad_flags', 'rx_unknown_vni', 'rx_inner_short', 'rx_oversize', 'rx_ring_full', 'tx_no_vni', 'tx_oversize', 'tx_send_errors']) {
      assert.equal(ca[k], 0, k);
    }
    assert.ok(ca.tx_unicast_learned! > 0 && ca.tx_flooded! > 0 && ca.learned! >= 2, JSON.stringify(ca));
    const cb = ub.counters();
    assert.equal(cb.rx_packets, cb.rx_frames, 'B took every datagram A sent into the device');

    // Conservation across the uplink, once quiet: every frame an engine put on the uplink ring was
    // sent or dropped by a named counter; every frame the worker put into the device was taken.
    await until(() => {
      const ok = (d: typeof a, u: VxlanUplink) => {
        const dc = d.deviceCounters();
        const uc = u.counters();
        const sent = uc.tx_frames! + uc.tx_oversize! + uc.tx_no_vni! + uc.tx_no_remote! + uc.tx_bad_len!;
        return dc.uplink_tx_frames === sent && uc.rx_frames === dc.uplink_rx_frames + dc.uplink_rx_runt + dc.uplink_rx_oversize && d.unaccounted() === 0;
      };
      return ok(a, ua) && ok(b, ub);
    }, 'uplink and device counters balance');
    await captureVif(a1.vif, null);
    await ua.capture(null);
    const vifFrames = pcapFrames(join(dir, 'a1.pcap'));
    const icmp = vifFrames.filter((f) => f[12] === 8 && f[13] === 0 && f[23] === 1);
    assert.ok(icmp.some((f) => f[34] === 8) && icmp.some((f) => f[34] === 0), 'a1 capture has echo requests and replies');
    const outer = pcapFrames(join(dir, 'a-outer.pcap'));
    assert.ok(outer.length > 0);
    for (const f of outer) {
      const dport = (f[36]! << 8) | f[37]!;
      assert.ok(dport === pb || dport === pa, 'outer UDP: to B, or from B to A');
      assert.equal(f[42], 0x08, 'VXLAN I flag');
      const vni = (f[46]! << 16) | (f[47]! << 8) | f[48]!;
      assert.ok(vni === 7 || vni === 8);
    }
  } finally {
    await Promise.all(uplinks.map((u) => u.stop()));
    await hv.stop();
  }
});

test('VXLAN over IPv6 loopback: the outer header is IPv6, guests still reach each other', { timeout: 60_000 }, async (t) => {
  const probe = (await import('node:dgram')).createSocket('udp6');
  const v6 = await new Promise<boolean>((res) => {
    probe.once('error', () => res(false));
    probe.bind(0, '::1', () => res(true));
  });
  probe.close();
  if (!v6) return t.skip('no IPv6 loopback (::1) on this machine');
  const hv = new Hypervisor();
  const uplinks: VxlanUplink[] = [];
  try {
    const [a, b] = await Promise.all([hv.createDevice({ name: 'A6' }), hv.createDevice({ name: 'B6' })]);
    const pa = 40000 + (process.pid % 20000);
    const pb = pa + 1;
    // A ages learned MACs after 1 s (checked below); B keeps the default 300 s.
    uplinks.push(await VxlanUplink.attach(a, { local: '::1', port: pa, dstPort: pb, ageingSec: 1, vnis: [{ vni: 6, remotes: ['::1'] }] }));
    uplinks.push(await VxlanUplink.attach(b, { local: '::1', port: pb, dstPort: pa, vnis: [{ vni: 6, remotes: ['::1'] }] }));
    const ga = await hv.startGuest({ name: 'a', module: ECHO, args: { ip: '10.6.0.1/24' } });
    await hv.createVifFor(ga, a, { name: 'a-eth0' });
    const gb = await hv.startGuest({ name: 'b', module: ECHO, args: { ip: '10.6.0.2/24' } });
    await hv.createVifFor(gb, b, { name: 'b-eth0' });
    await Promise.all([ga, gb].map((g) => g.report((r: any) => r.ready === true)));
    ga.send({ ping: '10.6.0.2', count: 2, timeoutMs: 2000, tag: 1 });
    const r = (await ga.report((x: any) => x.tag === 1)) as { rttMs: (number | null)[] };
    assert.ok(r.rttMs.every((x) => x !== null), JSON.stringify(r.rttMs));
    assert.ok(uplinks[0]!.settings.ipv6);
    assert.ok(uplinks[1]!.counters().rx_frames! >= 3);
    assert.ok((await uplinks[0]!.fdb()).some((e) => e.vtep === '::1'));
    // ageing: with no traffic, A forgets B's guest within about a second; B still knows A's
    await until(async () => (await uplinks[0]!.fdb()).length === 0, 'A aged out its learned MAC', 30_000);
    assert.ok(uplinks[0]!.counters().aged_out! >= 1);
    assert.ok((await uplinks[1]!.fdb()).length >= 1);
  } finally {
    await Promise.all(uplinks.map((u) => u.stop()));
    await hv.stop();
  }
});
