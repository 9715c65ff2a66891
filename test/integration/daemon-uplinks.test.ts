/**
 * The daemon with issue 4's uplinks (no root needed): one daemon runs two devices whose VXLAN
 * uplinks face each other over loopback UDP, a traffic guest on each. Checked:
 *  - the config starts, and both tunnels learn the other side's MAC;
 *  - hostile datagrams sent to a VTEP's port are counted by reason, and the uplink's counters,
 *    drop reasons and learned-table size are the same in GET /v1/uplinks/{device},
 *    GET /v1/devices/{device} and /metrics;
 *  - a reload that sets, moves and removes a VIF's `capture` changes the running VIF in place
 *    (same VIF, same slot) and the pcap files get that VIF's frames, both directions;
 *  - a capture path the daemon cannot write is refused and rolled back, the old capture goes on.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { http, tmp, TRAFFIC, freeUdpPort } from '../helpers/daemon.js';
import { until } from '../helpers/until.js';

let d: Daemon;
let dir: string;
let cfgFile: string;
let pa: number;
let pb: number;
const MAC_A = '02:00:00:07:00:0a';
const MAC_B = '02:00:00:07:00:0b';

function writeConfig(capture?: string, uplinkCapture?: string): void {
  const vx = (port: number, dstPort: number, cap?: string) =>
    `{ kind: vxlan, local: 127.0.0.1, port: ${port}, dstPort: ${dstPort}, vnis: [ { vni: 7, segment: 0, remotes: [127.0.0.1] } ]${cap ? `, capture: ${cap}` : ''} }`;
  writeFileSync(cfgFile, [
    'devices:',
    `  - { name: A, uplink: ${vx(pa, pb, uplinkCapture)} }`,
    `  - { name: B, uplink: ${vx(pb, pa)} }`,
    'guests:',
    `  - { name: a, module: ${JSON.stringify(TRAFFIC)}, args: { pps: 50 }, vifs: [ { name: a0, device: A, mac: "${MAC_A}"${capture ? `, capture: ${capture}` : ''} } ] }`,
    `  - { name: b, module: ${JSON.stringify(TRAFFIC)}, args: { pps: 50 }, vifs: [ { name: b0, device: B, mac: "${MAC_B}" } ] }`,
    '',
  ].join('\n'));
}

/** Source MACs of the frames in a classic pcap file (only complete records). */
function pcapSources(file: string): string[] {
  const b = readFileSync(file);
  if (b.length < 24) return [];
  assert.equal(b.readUInt32LE(0), 0xa1b2c3d4, `${file} is a pcap file`);
  const out: string[] = [];
  for (let o = 24; o + 16 <= b.length;) {
    const n = b.readUInt32LE(o + 8);
    if (o + 16 + n > b.length) break;
    out.push([...b.subarray(o + 16 + 6, o + 16 + 12)].map((x) => x.toString(16).padStart(2, '0')).join(':'));
    o += 16 + n;
  }
  return out;
}

const metricValue = (text: string, prefix: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${prefix} `));
  assert.ok(line, `a metric line ${prefix}`);
  return Number(line.split(' ').pop());
};

before(async () => {
  dir = tmp('sv7-uplinks-');
  cfgFile = join(dir, 'svnic.yaml');
  pa = await freeUdpPort();
  do pb = await freeUdpPort(); while (pb === pa);
  writeConfig();
  d = await startDaemon({ config: cfgFile, socket: join(dir, 'api.sock'), listen: { host: '127.0.0.1', port: 0 }, persist: false, log: () => {} });
});
after(async () => {
  await d?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a config with VXLAN uplinks starts; both tunnels learn the other side', { timeout: 60_000 }, async () => {
  const ups = (await http(d.url!, 'GET', '/v1/uplinks')).body as unknown as Record<string, any>[];
  assert.deepEqual(ups.map((u) => [u.device, u.kind, u.attached, u.port]), [['A', 'vxlan', true, pa], ['B', 'vxlan', true, pb]]);
  await until(async () => {
    const [a, b] = await Promise.all(['A', 'B'].map(async (n) => (await http(d.url!, 'GET', `/v1/uplinks/${n}`)).body as any));
    return a.fdbEntries === 1 && b.fdbEntries === 1;
  }, 'each VTEP learned the other guest\'s MAC');
  const fdb = (await http(d.url!, 'GET', '/v1/uplinks/A/fdb')).body as unknown as { vni: number; mac: string; vtep: string }[];
  assert.deepEqual(fdb.map((e) => [e.vni, e.mac, e.vtep]), [[7, MAC_B, '127.0.0.1']]);
  // frames crossed the tunnel into the guests (to_guest counters of the VIFs)
  await until(() => d.ctl.runtime.vifs.get('a0')!.vif.counters().rx_frames > 0 && d.ctl.runtime.vifs.get('b0')!.vif.counters().rx_frames > 0, 'frames delivered across the tunnel');
});

test('hostile datagrams are counted by reason, alike in the API, the device view and /metrics', { timeout: 60_000 }, async () => {
  const s = createSocket('udp4');
  try {
    const send = (b: Buffer) => new Promise<void>((r, j) => s.send(b, pa, '127.0.0.1', (e) => (e ? j(e) : r())));
    await send(Buffer.from([0x08, 0, 0])); // shorter than the 8-byte VXLAN header
    const noI = Buffer.alloc(8 + 14); // I flag clear (RFC 7348, 5)
    await send(noI);
    const vni99 = Buffer.alloc(8 + 14);
    vni99[0] = 0x08;
    vni99.writeUIntBE(99, 4, 3); // a VNI this VTEP does not carry
    await send(vni99);
  } finally {
    s.close();
  }
  await until(async () => {
    const u = (await http(d.url!, 'GET', '/v1/uplinks/A')).body as any;
    return u.counters.rx_short === 1 && u.counters.rx_bad_flags === 1 && u.counters.rx_unknown_vni === 1;
  }, 'the three datagrams counted');
  const u = (await http(d.url!, 'GET', '/v1/uplinks/A')).body as any;
  assert.deepEqual(u.dropReasons, { rx_short: 1, rx_bad_flags: 1, rx_unknown_vni: 1 });
  assert.equal(u.drops, 3);
  assert.equal(u.fdbEntries, 1, 'a hostile datagram taught the table nothing');
  const dev = (await http(d.url!, 'GET', '/v1/devices/A')).body as any;
  assert.deepEqual(dev.uplinkState.dropReasons, u.dropReasons);
  assert.equal(dev.uplinkState.fdbEntries, 1);
  const raw = (await http(d.url!, 'GET', '/v1/counters')).body as any;
  assert.equal(raw.devices.A.uplink.rx_short, 1);
  const b = (await http(d.url!, 'GET', '/v1/uplinks/B')).body as any;
  assert.equal(b.drops, 0, 'the other VTEP saw none of it');

  const text = (await http(d.url!, 'GET', '/metrics')).body as unknown as string;
  const l = 'device="A",kind="vxlan"';
  assert.equal(metricValue(text, `svnic_uplink_drops_total{${l},reason="rx_short"}`), 1);
  assert.equal(metricValue(text, `svnic_uplink_drops_total{${l},reason="rx_bad_flags"}`), 1);
  assert.equal(metricValue(text, `svnic_uplink_drops_total{${l},reason="rx_unknown_vni"}`), 1);
  assert.equal(metricValue(text, `svnic_uplink_drops_total{${l},reason="tx_no_remote"}`), 0);
  assert.equal(metricValue(text, `svnic_uplink_fdb_entries{${l}}`), 1);
  assert.ok(metricValue(text, `svnic_uplink_fdb_events_total{${l},event="learned"}`) >= 1);
  assert.ok(metricValue(text, `svnic_uplink_frames_total{${l},direction="to_network"}`) > 0);
  assert.ok(metricValue(text, `svnic_uplink_frames_total{${l},direction="from_network"}`) > 0);
  assert.ok(metricValue(text, `svnic_uplink_packets_total{${l},direction="from_network"}`) >= 3 + 1, 'the hostile datagrams are packets too');
  assert.equal(metricValue(text, `svnic_uplink_info{${l}}`), 1);

  // an unknown device: 404 NO_SUCH_DEVICE
  const none = await http(d.url!, 'GET', '/v1/uplinks/nope/fdb');
  assert.equal(none.status, 404);
  assert.equal(none.body.code, 'NO_SUCH_DEVICE');
});

test('a reload sets, moves and removes a VIF\'s capture in place; both directions are captured', { timeout: 90_000 }, async () => {
  const vifBefore = d.ctl.runtime.vifs.get('a0')!.vif;
  const sources = new Set<string>();
  writeConfig('a0.pcap'); // relative to the config file's directory
  const r1 = await d.ctl.reload();
  assert.deepEqual(r1.changes.map((c) => [c.kind, c.name, c.action, Object.keys(c.fields ?? {})]), [['vif', 'a0', 'changed', ['capture']]]);
  assert.equal(d.ctl.runtime.vifs.get('a0')!.vif, vifBefore, 'the same VIF (not replaced)');
  const f1 = join(dir, 'a0.pcap');
  await until(() => {
    for (const m of pcapSources(f1)) sources.add(m);
    return sources.has(MAC_A) && sources.has(MAC_B);
  }, 'a0.pcap holds frames a0 sent and frames b0 sent that reached a0 through the tunnel');

  // a path the daemon cannot write: refused, rolled back, the running capture goes on
  const bad = await http(d.url!, 'PATCH', '/v1/vifs/a0', { capture: join(dir, 'no-such-dir', 'x.pcap') }, { authorization: `Bearer ${readFileSync(d.tokenFile!, 'utf8').trim()}` });
  assert.equal(bad.status, 422, JSON.stringify(bad.body));
  assert.equal(bad.body.code, 'APPLY_FAILED');
  assert.equal((bad.body as any).cause, 'BAD_OPTION');
  assert.equal((bad.body as any).rolledBack, true);
  assert.equal(d.ctl.runtime.vifs.get('a0')!.cfg.capture, 'a0.pcap');
  const n1 = pcapSources(f1).length;
  await until(() => pcapSources(f1).length > n1, 'a0.pcap still grows');

  // move it to another file
  writeConfig('a0-second.pcap');
  const r2 = await d.ctl.reload();
  assert.deepEqual(r2.changes.map((c) => [c.name, c.action, c.fields?.capture]), [['a0', 'changed', { from: 'a0.pcap', to: 'a0-second.pcap' }]]);
  const f2 = join(dir, 'a0-second.pcap');
  await until(() => pcapSources(f2).includes(MAC_A), 'the new file gets a0\'s frames');
  const closed = statSync(f1).size;
  const sent = d.ctl.runtime.vifs.get('a0')!.vif.counters().tx_frames;

  // remove it: the file is complete and stops growing while a0 keeps sending
  writeConfig();
  const r3 = await d.ctl.reload();
  assert.deepEqual(r3.changes.map((c) => [c.name, c.action, Object.keys(c.fields ?? {})]), [['a0', 'changed', ['capture']]]);
  const stopped = statSync(f2).size;
  await until(() => d.ctl.runtime.vifs.get('a0')!.vif.counters().tx_frames >= sent + 20, 'a0 sent 20 more frames');
  assert.equal(statSync(f1).size, closed, 'the first file was closed when the capture moved');
  assert.equal(statSync(f2).size, stopped, 'no frame is written after the capture was removed');
  assert.equal((pcapSources(f2).length * 16 + 24) <= stopped, true);
  assert.equal(d.ctl.runtime.vifs.get('a0')!.vif, vifBefore, 'still the same VIF');

  // through the API: PATCH sets it, PATCH with null removes it (no other field changes)
  const auth = { authorization: `Bearer ${readFileSync(d.tokenFile!, 'utf8').trim()}` };
  const on = await http(d.url!, 'PATCH', '/v1/vifs/a0', { capture: 'a0-api.pcap' }, auth);
  assert.equal(on.status, 200, JSON.stringify(on.body));
  assert.deepEqual(on.body.summary, ['vif a0 changed (capture undefined -> "a0-api.pcap")']);
  assert.equal((on.body.vif as any).capture, 'a0-api.pcap');
  await until(() => pcapSources(join(dir, 'a0-api.pcap')).includes(MAC_A), 'a0-api.pcap gets a0\'s frames');
  const off = await http(d.url!, 'PATCH', '/v1/vifs/a0', { capture: null }, auth);
  assert.equal(off.status, 200, JSON.stringify(off.body));
  assert.deepEqual(off.body.summary, ['vif a0 changed (capture "a0-api.pcap" -> undefined)']);
  assert.equal((off.body.vif as any).capture, null);
  assert.equal(d.ctl.runtime.vifs.get('a0')!.vif, vifBefore, 'still the same VIF');
  const badType = await http(d.url!, 'PATCH', '/v1/vifs/a0', { capture: 5 }, auth);
  assert.equal(badType.body.code, 'BAD_TYPE');
  const notNullable = await http(d.url!, 'PATCH', '/v1/vifs/a0', { mtu: null }, auth);
  assert.equal(notNullable.body.code, 'BAD_TYPE', 'only optional fields without a default take null');
});

test('a reload sets and removes a VXLAN uplink\'s capture on the running uplink; other uplink changes need a restart', { timeout: 60_000 }, async () => {
  writeConfig(undefined, '{ path: tunnel.pcap, mode: outer }');
  const r1 = await d.ctl.reload();
  assert.deepEqual(r1.summary, ['device A changed (uplink.capture undefined -> {"path":"tunnel.pcap","mode":"outer"})']);
  const f = join(dir, 'tunnel.pcap');
  // outer mode: each record is a rebuilt Ethernet + IPv4 + UDP header, then the VXLAN header (I flag, VNI 7)
  const vxlanRecords = () => {
    let b: Buffer;
    try {
      b = readFileSync(f);
    } catch {
      return 0;
    }
    let n = 0;
    for (let o = 24; o + 16 <= b.length;) {
      const len = b.readUInt32LE(o + 8);
      if (o + 16 + len > b.length) break;
      const vx = o + 16 + 14 + 20 + 8;
      if (len >= 14 + 20 + 8 + 8 && b[vx] === 0x08 && b.readUIntBE(vx + 4, 3) === 7) n++;
      o += 16 + len;
    }
    return n;
  };
  await until(() => vxlanRecords() > 0, 'tunnel.pcap holds VXLAN datagrams of VNI 7');
  assert.equal((await http(d.url!, 'GET', '/v1/uplinks/A')).body.capture !== undefined, true);

  writeConfig();
  const r2 = await d.ctl.reload();
  assert.deepEqual(r2.changes.map((c) => [c.kind, c.name, c.action, Object.keys(c.fields ?? {})]), [['device', 'A', 'changed', ['uplink.capture']]]);
  // any other uplink field: 409 NEEDS_RESTART, nothing changed
  writeFileSync(cfgFile, readFileSync(cfgFile, 'utf8').replace(`port: ${pa},`, `port: ${pa}, pathMtu: 1400,`));
  const gen = d.ctl.generation;
  await assert.rejects(d.ctl.reload(), (e: Error & { code?: string }) => e.code === 'NEEDS_RESTART' && /devices\.0\.uplink/.test(e.message));
  assert.equal(d.ctl.generation, gen);
  writeConfig();
});

test('a VIF\'s capture changed many times: each file is complete, and no listener piles up on the device', { timeout: 60_000 }, async () => {
  const warnings: string[] = [];
  const onWarn = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarn);
  try {
    const dev = d.ctl.runtime.devices.get('A')!.device;
    const listeners = dev.listenerCount('vif-destroyed');
    const auth = { authorization: `Bearer ${readFileSync(d.tokenFile!, 'utf8').trim()}` };
    for (let i = 0; i < 12; i++) {
      const r = await http(d.url!, 'PATCH', '/v1/vifs/a0', { capture: `many-${i}.pcap` }, auth);
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    assert.equal(dev.listenerCount('vif-destroyed'), Math.max(listeners, 1), 'one listener per device, however many captures');
    await until(() => pcapSources(join(dir, 'many-11.pcap')).includes(MAC_A), 'the last file gets a0\'s frames');
    assert.equal((await http(d.url!, 'PATCH', '/v1/vifs/a0', { capture: null }, auth)).status, 200);
    for (let i = 0; i < 12; i++) pcapSources(join(dir, `many-${i}.pcap`)); // each parses as a pcap file (header checked)
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')), []);
  } finally {
    process.off('warning', onWarn);
  }
});
