/**
 * System test: svnic's TAP uplink with the Linux kernel's own stack at the other end (scenario 3
 * of issue 4). svnic runs inside a namespace this test creates (sv4-<pid>-tap) and always deletes;
 * its TAP interface lives there, gets an address, and the kernel pings the `echo` guest through it
 * and gets a netcat UDP datagram echoed. tshark reads svnic's capture of the interface.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, makeNs, nsExec, sh, suiteOptions, requireAble, startSvnic, type SvnicChild } from './helpers/netns.js';
import { until } from '../helpers/until.js';
import { tempDir } from '../helpers/tmp.js';

const TOOLS = ['ping', 'nc', 'tshark'];
const LIMIT = { timeout: 120_000 };

describe('TAP uplink vs the Linux kernel (system)', { timeout: 240_000, ...suiteOptions(TOOLS) }, () => {
  let ns = '';
  let sv: SvnicChild | null = null;
  let dir = '';
  const tap = `sv4t${process.pid % 100000}`;


  after(async () => {
    await sv?.stop().catch(() => {});
    cleanup();
  });

  test('setup: svnic with a TAP uplink and an echo guest, the TAP interface addressed', LIMIT, async () => {
    requireAble(TOOLS);
    dir = tempDir('sv4-tap-');
    ns = makeNs('tap');
    const cfg = {
      device: { name: 'dev', uplink: { kind: 'tap', ifname: tap, capture: { path: join(dir, 'tap.pcap') } } },
      guests: [{ name: 'echo', module: 'svnic:echo', args: { ip: '10.43.0.2/24' }, vifs: [{ name: 'echo-eth0', mac: '02:00:00:00:43:02' }] }],
    };
    writeFileSync(join(dir, 'svnic.json'), JSON.stringify(cfg));
    sv = await startSvnic(join(dir, 'svnic.json'), ns);
    await sv.report('echo', (d) => d.ready === true);
    nsExec(ns, 'ip', 'addr', 'add', '10.43.0.1/24', 'dev', tap);
    nsExec(ns, 'ip', 'link', 'set', tap, 'up');
  });

  test('the kernel pings the echo guest over TAP', LIMIT, () => {
    assert.match(nsExec(ns, 'ping', '-c', '5', '-i', '0.2', '-W', '2', '10.43.0.2'), /5 packets transmitted, 5 received/);
  });

  test('a netcat UDP datagram comes back from port 7', LIMIT, () => {
    assert.equal(sh('ip', ['netns', 'exec', ns, 'sh', '-c', 'printf "over tap" | timeout 10 nc -u -w 2 10.43.0.2 7']), 'over tap');
  });

  test('the guest pings the kernel; counters balance', LIMIT, async () => {
    await sv!.call({ cmd: 'send', guest: 'echo', msg: { ping: '10.43.0.1', count: 3, timeoutMs: 3000 } });
    const r = await sv!.report('echo', (d) => 'rttMs' in d);
    assert.ok(r.rttMs.every((x: number | null) => typeof x === 'number'), JSON.stringify(r.rttMs));
    const snap = (await sv!.call({ cmd: 'counters' })).counters as any;
    const up = snap.devices[0].uplinkCounters;
    assert.ok(up.tx_frames >= 8 && up.rx_frames >= 8, JSON.stringify(up));
    for (const k of ['tx_wrong_segment', 'tx_errors', 'rx_runt', 'rx_oversize', 'rx_ring_full', 'rx_errors']) assert.equal(up[k], 0, k);
  });

  test('tshark reads svnic\'s capture of the TAP interface', LIMIT, async () => {
    await sv!.call({ cmd: 'capture', device: 'dev', path: null });
    let out = '';
    await until(() => {
      out = sh('tshark', ['-r', join(dir, 'tap.pcap'), '-Y', 'icmp', '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'icmp.type']);
      return out.length > 0;
    }, 'capture readable');
    assert.match(out, /10\.43\.0\.1\t10\.43\.0\.2\t8/);
    assert.match(out, /10\.43\.0\.2\t10\.43\.0\.1\t0/);
  });
});
