/**
 * System test, scenario 2 of issue 4: two svnic instances, each in its own namespace, and a Linux
 * kernel VTEP as a third member of VNI 45, on one L2 network (a Linux bridge in the `linux`
 * namespace joined to the others by veth pairs). Guests on both svnic instances and the kernel
 * reach each other (ping, all pairs), a broadcast reaches every member, and flood-and-learn fills
 * the forwarding tables on all three VTEPs. Namespaces are sv4-<pid>-* and always deleted.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, ip, makeNs, nsExec, suiteOptions, requireAble, startSvnic, type SvnicChild } from './helpers/netns.js';
import { until } from '../helpers/until.js';
import { tempDir } from '../helpers/tmp.js';

const TOOLS = ['ping', 'ethtool'];
const LIMIT = { timeout: 120_000 };
const GUESTS = {
  a1: { ip: '10.45.0.11', mac: '02:00:00:00:45:11', on: 'A' },
  a2: { ip: '10.45.0.12', mac: '02:00:00:00:45:12', on: 'A' },
  b1: { ip: '10.45.0.21', mac: '02:00:00:00:45:21', on: 'B' },
} as const;
const LINUX_IP = '10.45.0.3';
const VTEP = { A: '192.168.45.1', B: '192.168.45.2', L: '192.168.45.3' } as const;

describe('two svnic VTEPs and a Linux VTEP in one VNI (system)', { timeout: 300_000, ...suiteOptions(TOOLS) }, () => {
  let linux = '';
  const sv: Record<'A' | 'B', SvnicChild | null> = { A: null, B: null };


  after(async () => {
    await Promise.all([sv.A?.stop().catch(() => {}), sv.B?.stop().catch(() => {})]);
    cleanup();
  });

  const stats = async (g: keyof typeof GUESTS): Promise<Record<string, number>> => {
    const s = sv[GUESTS[g].on]!;
    await s.call({ cmd: 'send', guest: g, msg: 'stats' });
    return (await s.report(g, (d) => 'stats' in d)).stats;
  };

  test('setup: bridge, three VTEPs, three echo guests', LIMIT, async () => {
    requireAble(TOOLS);
    const dir = tempDir('sv4-mesh-');
    linux = makeNs('linux');
    const ns = { A: makeNs('a'), B: makeNs('b') };
    nsExec(linux, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
    nsExec(linux, 'ip', 'addr', 'add', `${VTEP.L}/24`, 'dev', 'br0');
    nsExec(linux, 'ip', 'link', 'set', 'br0', 'up');
    const tag = process.pid % 10000;
    for (const side of ['A', 'B'] as const) {
      const here = `sv4m${tag}${side}`;
      const there = `sv4m${tag}${side}p`;
      ip('link', 'add', here, 'netns', ns[side], 'type', 'veth', 'peer', 'name', there, 'netns', linux);
      nsExec(ns[side], 'ip', 'addr', 'add', `${VTEP[side]}/24`, 'dev', here);
      nsExec(ns[side], 'ip', 'link', 'set', here, 'up');
      nsExec(linux, 'ip', 'link', 'set', there, 'master', 'br0');
      nsExec(linux, 'ip', 'link', 'set', there, 'up');
    }
    nsExec(linux, 'ip', 'link', 'add', 'vx45', 'type', 'vxlan', 'id', '45', 'local', VTEP.L, 'dstport', '4789', 'dev', 'br0');
    for (const r of [VTEP.A, VTEP.B]) nsExec(linux, 'bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vx45', 'dst', r);
    nsExec(linux, 'ip', 'addr', 'add', `${LINUX_IP}/24`, 'dev', 'vx45');
    nsExec(linux, 'ip', 'link', 'set', 'vx45', 'up');
    nsExec(linux, 'ethtool', '-K', 'vx45', 'tx', 'off'); // inner checksums computed by the kernel (see vxlan.test.ts)
    for (const side of ['A', 'B'] as const) {
      const others = Object.entries(VTEP).filter(([k]) => k !== side).map(([, v]) => v);
      const cfg = {
        device: { name: 'dev', uplink: { kind: 'vxlan', local: VTEP[side], vnis: [{ vni: 45, segment: 0, remotes: others }] } },
        guests: Object.entries(GUESTS).filter(([, g]) => g.on === side).map(([name, g]) => ({
          name, module: 'svnic:echo', args: { ip: `${g.ip}/24` }, vifs: [{ name: `${name}-eth0`, mac: g.mac }],
        })),
      };
      writeFileSync(join(dir, `${side}.json`), JSON.stringify(cfg));
      sv[side] = await startSvnic(join(dir, `${side}.json`), ns[side]);
    }
    for (const [g, d] of Object.entries(GUESTS)) await sv[d.on]!.report(g, (r) => r.ready === true);
  });

  test('every guest pings every other guest and the kernel', LIMIT, async () => {
    for (const [g, d] of Object.entries(GUESTS)) {
      for (const target of [...Object.values(GUESTS).map((x) => x.ip).filter((x) => x !== d.ip), LINUX_IP]) {
        await sv[d.on]!.call({ cmd: 'send', guest: g, msg: { ping: target, count: 2, timeoutMs: 3000 } });
        const r = await sv[d.on]!.report(g, (x) => x.ping === target);
        assert.ok(r.rttMs.every((x: number | null) => typeof x === 'number'), `${g} -> ${target}: ${JSON.stringify(r.rttMs)}`);
      }
    }
  });

  test('the kernel pings every guest', LIMIT, () => {
    for (const d of Object.values(GUESTS)) {
      assert.match(nsExec(linux, 'ping', '-c', '2', '-i', '0.2', '-W', '2', d.ip), /2 received/, d.ip);
    }
  });

  test('a broadcast from the kernel reaches every guest on both svnic instances', LIMIT, async () => {
    const before = Object.fromEntries(await Promise.all(Object.keys(GUESTS).map(async (g) => [g, (await stats(g as never)).udp_delivered])));
    nsExec(linux, process.execPath, '-e', `
      const s = require('node:dgram').createSocket('udp4');
      s.bind(() => { s.setBroadcast(true); s.send('to all', 7, '10.45.0.255', () => s.close()); });`);
    for (const g of Object.keys(GUESTS)) {
      await until(async () => (await stats(g as never)).udp_delivered > before[g], `${g} got the broadcast`);
    }
  });

  test('flood-and-learn filled all three forwarding tables', LIMIT, async () => {
    const linuxMac = nsExec(linux, 'cat', '/sys/class/net/vx45/address').trim();
    for (const side of ['A', 'B'] as const) {
      const fdb = (await sv[side]!.call({ cmd: 'fdb', device: 'dev' })).fdb as { mac: string; vtep: string; vni: number }[];
      const expect = [
        ...Object.values(GUESTS).filter((g) => g.on !== side).map((g) => ({ mac: g.mac, vtep: VTEP[g.on] })),
        { mac: linuxMac, vtep: VTEP.L },
      ];
      for (const e of expect) assert.ok(fdb.some((f) => f.vni === 45 && f.mac === e.mac && f.vtep === e.vtep), `${side} learned ${e.mac} at ${e.vtep}: ${JSON.stringify(fdb)}`);
      // a VTEP never learns its own guests from the network
      for (const g of Object.values(GUESTS).filter((x) => x.on === side)) assert.ok(!fdb.some((f) => f.mac === g.mac), `${side} did not learn its own ${g.mac}`);
    }
    const kfdb = nsExec(linux, 'bridge', 'fdb', 'show', 'dev', 'vx45');
    for (const g of Object.values(GUESTS)) assert.match(kfdb, new RegExp(`${g.mac} dst ${VTEP[g.on].replace(/\./g, '\\.')}`), `kernel learned ${g.mac}`);
  });
});
