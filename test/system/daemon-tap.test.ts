/**
 * System test: svnicd with a TAP uplink (issue 4) and the Linux kernel at the other end. The
 * daemon runs inside a namespace this test creates (sv7-<pid>-tap) and always deletes; its config
 * gives the TAP uplink a capture file by a relative path (resolved against the config file's
 * directory, as module paths are). The kernel pings the `svnic:echo` guest through the TAP
 * interface; the uplink's counters then show in GET /v1/uplinks/dev0 and /metrics, and the
 * capture file holds the guest's replies while the daemon still runs.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sh, nsExec, suiteOptions, requireAble } from './helpers/netns.js';
import { spawnDaemon, type Spawned } from '../helpers/spawn-daemon.js';
import { Client } from '../../src/cli/client.js';
import { tmp } from '../helpers/daemon.js';
import { until } from '../helpers/until.js';

const TOOLS = ['ping'];
const LIMIT = { timeout: 120_000 };
const GUEST_MAC = '02:00:00:00:77:02';

/** Source MACs of the complete records of a classic pcap file. */
function pcapSources(file: string): string[] {
  let b: Buffer;
  try {
    b = readFileSync(file);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (let o = 24; o + 16 <= b.length;) {
    const n = b.readUInt32LE(o + 8);
    if (o + 16 + n > b.length) break;
    out.push([...b.subarray(o + 16 + 6, o + 16 + 12)].map((x) => x.toString(16).padStart(2, '0')).join(':'));
    o += 16 + n;
  }
  return out;
}

describe('svnicd with a TAP uplink vs the Linux kernel (system)', { timeout: 240_000, ...suiteOptions(TOOLS) }, () => {
  const ns = `sv7-${process.pid}-tap`;
  const tap = `sv7t${process.pid % 100000}`;
  let dir = '';
  let d: Spawned | null = null;
  let c: Client;
  let nsMade = false;

  after(async () => {
    if (d) {
      d.child.kill('SIGTERM');
      await d.exited;
    }
    if (nsMade) sh('ip', ['netns', 'del', ns], { allowFail: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('setup: the daemon starts in a namespace with a TAP uplink and an echo guest', LIMIT, async () => {
    requireAble(TOOLS);
    dir = tmp('sv7-tap-');
    sh('ip', ['netns', 'add', ns]);
    nsMade = true;
    nsExec(ns, 'ip', 'link', 'set', 'lo', 'up');
    writeFileSync(join(dir, 'svnic.yaml'), [
      `device: { name: dev0, uplink: { kind: tap, ifname: ${tap}, capture: { path: tap.pcap } } }`,
      'guests:',
      `  - { name: echo, module: "svnic:echo", args: { ip: 10.77.0.2/24 }, vifs: [ { name: echo-eth0, mac: "${GUEST_MAC}" } ] }`,
      '',
    ].join('\n'));
    d = await spawnDaemon(['--config', join(dir, 'svnic.yaml'), '--socket', join(dir, 'api.sock'), '--no-persist'], 60_000, ['ip', 'netns', 'exec', ns]);
    c = new Client({ socket: d.ready.socket });
    nsExec(ns, 'ip', 'addr', 'add', '10.77.0.1/24', 'dev', tap);
    nsExec(ns, 'ip', 'link', 'set', tap, 'up');
    const u = await c.call<Record<string, unknown>>('GET', '/v1/uplinks/dev0');
    assert.equal(u.kind, 'tap');
    assert.equal(u.ifname, tap);
    assert.equal(u.attached, true);
  });

  test('the kernel pings the echo guest through the daemon\'s TAP uplink', LIMIT, async () => {
    // the guest's stack answers once it has started (after the daemon's start message)
    await until(() => /1 received/.test(sh('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '1', '10.77.0.2'], { allowFail: true })), 'the guest answers a first ping', 60_000);
    assert.match(nsExec(ns, 'ping', '-c', '3', '-i', '0.2', '-W', '2', '10.77.0.2'), /3 packets transmitted, 3 received/);
  });

  test('the uplink counters are in the API and /metrics; the capture file is readable while the daemon runs', LIMIT, async () => {
    const u = await c.call<{ counters: Record<string, number>; drops: number; dropReasons: Record<string, number> }>('GET', '/v1/uplinks/dev0');
    assert.ok(u.counters.tx_frames! >= 4 && u.counters.rx_frames! >= 4, JSON.stringify(u.counters));
    assert.equal(u.drops, 0, JSON.stringify(u.dropReasons));
    const dev = await c.call<{ uplinkState: { counters: Record<string, number> } }>('GET', '/v1/devices/dev0');
    assert.ok(dev.uplinkState.counters.tx_frames! >= 4);
    const text = await c.call<string>('GET', '/metrics');
    const value = (prefix: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${prefix} `));
      assert.ok(line, prefix);
      return Number(line.split(' ').pop());
    };
    const l = 'device="dev0",kind="tap"';
    assert.ok(value(`svnic_uplink_frames_total{${l},direction="to_network"}`) >= 4);
    assert.ok(value(`svnic_uplink_frames_total{${l},direction="from_network"}`) >= 4);
    for (const r of ['tx_wrong_segment', 'tx_again', 'tx_errors', 'rx_runt', 'rx_oversize', 'rx_ring_full', 'rx_errors']) {
      assert.equal(value(`svnic_uplink_drops_total{${l},reason="${r}"}`), 0, r);
    }
    assert.ok(!text.includes(`svnic_uplink_fdb_entries{${l}}`), 'a TAP uplink learns no MACs: no FDB series');
    await until(() => pcapSources(join(dir, 'tap.pcap')).includes(GUEST_MAC), 'tap.pcap (next to the config file) holds the guest\'s frames');
  });
});
