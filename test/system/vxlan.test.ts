/**
 * System tests: svnic's VXLAN uplink against the Linux kernel's own `vxlan` driver, in network
 * namespaces this test creates (sv4-<pid>-*) and always deletes. Scenarios 1 and 4 of issue 4:
 * the kernel pings an `echo` guest over VXLAN and gets a UDP datagram echoed back by a stock tool
 * (netcat); hostile outer packets are counted by reason; tshark decodes svnic's pcap of the
 * tunnel as VXLAN with the right VNI and inner frames.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, makeNs, nsExec, sh, suiteOptions, requireAble, startSvnic, veth, type SvnicChild } from './helpers/netns.js';
import { tempDir } from '../helpers/tmp.js';

const TOOLS = ['ping', 'nc', 'tshark', 'ethtool'];
const LIMIT = { timeout: 120_000 }; // a hang fails the test; not a timing check

describe('VXLAN uplink vs the Linux kernel (system)', { timeout: 240_000, ...suiteOptions(TOOLS) }, () => {
  let linux = '';
  let svns = '';
  let sv: SvnicChild | null = null;
  let dir = '';


  after(async () => {
    await sv?.stop().catch(() => {});
    cleanup();
  });

  test('setup: Linux VTEP (VNI 42) and svnic with an echo guest', LIMIT, async () => {
    requireAble(TOOLS);
    dir = tempDir('sv4-vxlan-');
    linux = makeNs('linux');
    svns = makeNs('svnic');
    veth(linux, '192.168.44.2/24', svns, '192.168.44.1/24', `${process.pid % 100000}`);
    const dev = `sv4${process.pid % 100000}a`;
    nsExec(linux, 'ip', 'link', 'add', 'vx42', 'type', 'vxlan', 'id', '42', 'remote', '192.168.44.1', 'local', '192.168.44.2',
      'dstport', '4789', 'dev', dev);
    nsExec(linux, 'ip', 'addr', 'add', '10.42.0.1/24', 'dev', 'vx42');
    nsExec(linux, 'ip', 'link', 'set', 'vx42', 'up');
    // Over veth the kernel leaves the inner UDP checksum to "hardware" (CHECKSUM_PARTIAL) and no
    // hardware ever fills it in, so svnic's guest would rightly count udp_bad_checksum. A real NIC
    // computes it; here the kernel must: turn checksum offload off on the Linux VTEP.
    nsExec(linux, 'ethtool', '-K', 'vx42', 'tx', 'off');
    const cfg = {
      device: {
        name: 'dev',
        uplink: { kind: 'vxlan', local: '192.168.44.1', vnis: [{ vni: 42, segment: 0, remotes: ['192.168.44.2'] }],
          capture: { path: join(dir, 'outer.pcap'), mode: 'outer' } },
      },
      guests: [{ name: 'echo', module: 'svnic:echo', args: { ip: '10.42.0.2/24' }, vifs: [{ name: 'echo-eth0', mac: '02:00:00:00:42:02' }] }],
    };
    writeFileSync(join(dir, 'svnic.json'), JSON.stringify(cfg));
    sv = await startSvnic(join(dir, 'svnic.json'), svns);
    await sv.report('echo', (d) => d.ready === true);
  });

  test('the kernel pings the echo guest over VXLAN (ping -c 5)', LIMIT, () => {
    const out = nsExec(linux, 'ping', '-c', '5', '-i', '0.2', '-W', '2', '10.42.0.2');
    assert.match(out, /5 packets transmitted, 5 received/);
  });

  test('a UDP datagram sent with netcat comes back from port 7', LIMIT, async () => {
    const out = sh('ip', ['netns', 'exec', linux, 'sh', '-c', 'printf "hello svnic" | timeout 10 nc -u -w 2 10.42.0.2 7']);
    await sv!.call({ cmd: 'send', guest: 'echo', msg: 'stats' });
    const st = await sv!.report('echo', (d) => 'stats' in d);
    assert.equal(out, 'hello svnic', JSON.stringify(st.stats));
    assert.equal(st.stats.udp_delivered, 1);
  });

  test('the guest pings the kernel, and learning put the kernel VTEP in the FDB', LIMIT, async () => {
    await sv!.call({ cmd: 'send', guest: 'echo', msg: { ping: '10.42.0.1', count: 3, timeoutMs: 3000 } });
    const r = await sv!.report('echo', (d) => 'rttMs' in d);
    assert.equal(r.rttMs.length, 3);
    assert.ok(r.rttMs.every((x: number | null) => typeof x === 'number'), `all pings answered: ${JSON.stringify(r.rttMs)}`);
    const linuxMac = nsExec(linux, 'cat', '/sys/class/net/vx42/address').trim();
    const fdb = (await sv!.call({ cmd: 'fdb', device: 'dev' })).fdb as { vni: number; mac: string; vtep: string }[];
    assert.ok(fdb.some((e) => e.vni === 42 && e.mac === linuxMac && e.vtep === '192.168.44.2'), JSON.stringify(fdb));
    // and the kernel learned the guest's MAC behind svnic's VTEP
    const kfdb = nsExec(linux, 'bridge', 'fdb', 'show', 'dev', 'vx42');
    assert.match(kfdb, /02:00:00:00:42:02 dst 192\.168\.44\.1/);
  });

  test('hostile outer packets are dropped and counted by reason; traffic still flows', LIMIT, async () => {
    const before = ((await sv!.call({ cmd: 'counters' })).counters as any).devices[0].uplinkCounters;
    // Crafted datagrams to svnic's VXLAN port from the Linux namespace, with Node's own dgram.
    const script = `
      const d = require('node:dgram'); const s = d.createSocket('udp4');
      const inner = Buffer.alloc(60); inner.fill(0xff, 0, 6); inner[6] = 2; inner[12] = 0x88; inner[13] = 0xb5;
      const hdr = (flags, vni) => Buffer.from([flags, 0, 0, 0, vni >> 16, (vni >> 8) & 255, vni & 255, 0]);
      const pkts = [
        Buffer.from([8, 0, 0]),                                   // short
        Buffer.concat([hdr(0x00, 42), inner]),                    // I flag clear
        Buffer.concat([hdr(0x08, 43), inner]),                    // unknown VNI
        Buffer.concat([hdr(0x08, 42), inner.subarray(0, 10)]),    // inner frame too short
        Buffer.concat([hdr(0x08, 42), Buffer.alloc(9100, 1)]),    // oversize inner frame
      ];
      let n = 0;
      for (const p of pkts) s.send(p, 4789, '192.168.44.1', () => { if (++n === pkts.length) s.close(); });`;
    nsExec(linux, process.execPath, '-e', script);
    const { until } = await import('../helpers/until.js');
    let now: Record<string, number> = {};
    await until(async () => {
      now = ((await sv!.call({ cmd: 'counters' })).counters as any).devices[0].uplinkCounters;
      return now.rx_packets! - before.rx_packets >= 5;
    }, 'svnic received the 5 crafted datagrams');
    for (const k of ['rx_short', 'rx_bad_flags', 'rx_unknown_vni', 'rx_inner_short', 'rx_oversize']) {
      assert.equal(now[k]! - before[k], 1, `${k} moved by one`);
    }
    assert.match(nsExec(linux, 'ping', '-c', '2', '-i', '0.2', '-W', '2', '10.42.0.2'), /2 received/);
  });

  test('frames too big for the path MTU are counted (tx_oversize), not silently lost', LIMIT, async () => {
    // The guest (MTU 1500) sends a 1500-byte IP packet: its 1514-byte frame needs 1550 bytes outside.
    const before = ((await sv!.call({ cmd: 'counters' })).counters as any).devices[0].uplinkCounters.tx_oversize;
    await sv!.call({ cmd: 'send', guest: 'echo', msg: { udp: '10.42.0.1', port: 9, data: 'x'.repeat(1472) } });
    assert.equal((await sv!.report('echo', (d) => 'udp' in d)).sent, true);
    const { until } = await import('../helpers/until.js');
    await until(async () => ((await sv!.call({ cmd: 'counters' })).counters as any).devices[0].uplinkCounters.tx_oversize > before, 'tx_oversize moved');
  });

  test('tshark decodes svnic\'s pcap of the tunnel: VXLAN, VNI 42, inner ICMP and ARP', LIMIT, async () => {
    await sv!.call({ cmd: 'capture', device: 'dev', path: null }); // close (flushes) the outer capture
    const outer = sh('tshark', ['-r', join(dir, 'outer.pcap'), '-d', 'udp.port==4789,vxlan', '-T', 'fields', '-E', 'separator=|', '-E', 'aggregator=;',
      '-e', 'vxlan.vni', '-e', 'eth.type', '-e', 'icmp.type', '-e', 'arp.opcode']);
    const rows = outer.trim().split('\n').map((l) => l.split('|'));
    const ours = rows.filter((r) => r[0] === '42');
    assert.ok(ours.length >= 10, `enough VNI 42 packets: ${ours.length} of ${rows.length}`);
    // the rest are the 5 crafted hostile datagrams (one has VNI 43, one is too short to have one)
    assert.ok(rows.length - ours.length <= 5, `only the crafted packets are not VNI 42: ${JSON.stringify(rows.filter((r) => r[0] !== '42'))}`);
    assert.ok(ours.some((r) => r[2]?.split(';').includes('8')) && ours.some((r) => r[2]?.split(';').includes('0')), 'inner ICMP echo request and reply');
    assert.ok(ours.some((r) => r[3]?.includes('1')) && ours.some((r) => r[3]?.includes('2')), 'inner ARP request and reply');
    // an inner capture started on the fly, read back with tshark too
    await sv!.call({ cmd: 'capture', device: 'dev', path: join(dir, 'inner.pcap'), mode: 'inner' });
    nsExec(linux, 'ping', '-c', '2', '-i', '0.2', '-W', '2', '10.42.0.2');
    await sv!.call({ cmd: 'capture', device: 'dev', path: null });
    const inner = sh('tshark', ['-r', join(dir, 'inner.pcap'), '-Y', 'icmp', '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'icmp.type']);
    assert.match(inner, /10\.42\.0\.1\t10\.42\.0\.2\t8/);
    assert.match(inner, /10\.42\.0\.2\t10\.42\.0\.1\t0/);
  });
});
