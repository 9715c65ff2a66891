/**
 * The daemon's API on real sockets with a real device and guests: every kind of bad input gets its
 * 4xx and code and leaves the device untouched; changes are applied as differences and reported.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { Client, ClientError } from '../../src/cli/client.js';
import { daemonConfig, http, tmp, TRAFFIC } from '../helpers/daemon.js';
import { until } from '../helpers/until.js';

let d: Daemon;
let url: string;
let token: string;
let dir: string;
let cfgFile: string;
let unix: Client;
const auth = () => ({ authorization: `Bearer ${token}` });

before(async () => {
  dir = tmp();
  cfgFile = daemonConfig(dir);
  d = await startDaemon({ config: cfgFile, socket: join(dir, 'api.sock'), listen: { host: '127.0.0.1', port: 0 }, stateDir: join(dir, 'state'), log: () => {} });
  url = d.url!;
  token = readFileSync(d.tokenFile!, 'utf8').trim();
  unix = new Client({ socket: d.socket });
});
after(async () => {
  await d?.close();
});

/** Everything about the running device a bad request must not change. */
function deviceState(): string {
  const vifs = [...d.ctl.runtime.vifs.values()].map((r) => ({
    name: r.vif.id, guest: r.guest, slot: r.vif.slot, state: r.vif.state, mac: r.vif.mac, mtu: r.vif.mtu, segment: r.vif.segment,
    settings: r.vif.settings,
  }));
  const devVifs = [...d.ctl.runtime.devices.values()].flatMap((x) => x.device.vifs().map((v) => v.id));
  return JSON.stringify({ vifs, devVifs, generation: d.ctl.generation, doc: d.ctl.doc, guests: [...d.ctl.runtime.guests.keys()] });
}

async function expectError(p: Promise<{ status: number; body: { code?: string } }>, status: number, code: string): Promise<{ code?: string; message?: string }> {
  const before = deviceState();
  const r = await p;
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.code, code, JSON.stringify(r.body));
  assert.equal(typeof (r.body as { message?: unknown }).message, 'string');
  assert.equal(deviceState(), before, 'the device is untouched');
  return r.body as { code?: string; message?: string };
}

test('the unix socket is mode 0600 and serves without a token', async () => {
  assert.equal(statSync(d.socket).mode & 0o777, 0o600);
  const vifs = await unix.call<{ name: string }[]>('GET', '/v1/vifs');
  assert.deepEqual(vifs.map((v) => v.name).sort(), ['a0', 'b0']);
});

test('a second daemon on the same socket refuses to start and leaves the first one alone', async () => {
  await assert.rejects(startDaemon({ socket: d.socket, persist: false, log: () => {} }), /another svnicd is listening on .*api\.sock/);
  assert.equal((await unix.call<unknown[]>('GET', '/v1/vifs')).length >= 2, true);
});

test('OpenAPI document lists the routes with their schemas', async () => {
  const r = await http(url, 'GET', '/v1/openapi.json');
  assert.equal(r.status, 200);
  const paths = r.body.paths as Record<string, Record<string, { requestBody?: unknown }>>;
  for (const p of ['/v1/vifs', '/v1/vifs/{name}', '/v1/config', '/v1/stats', '/metrics', '/v1/devices', '/v1/guests', '/v1/uplinks', '/v1/counters']) assert.ok(paths[p], p);
  assert.ok(paths['/v1/vifs']!.post!.requestBody);
});

test('no token / wrong token on a mutating TCP call: 401 TOKEN_REQUIRED / TOKEN_INVALID; reads need none', async () => {
  await expectError(http(url, 'POST', '/v1/vifs', { guest: 'a' }), 401, 'TOKEN_REQUIRED');
  await expectError(http(url, 'DELETE', '/v1/vifs/a0'), 401, 'TOKEN_REQUIRED');
  await expectError(http(url, 'DELETE', '/v1/vifs/a0', undefined, { authorization: 'Bearer not-the-token-at-all-xxxxxxxx' }), 401, 'TOKEN_INVALID');
  await expectError(http(url, 'PUT', '/v1/config', { device: {} }, { authorization: 'Basic abc' }), 401, 'TOKEN_REQUIRED');
  assert.equal((await http(url, 'GET', '/v1/vifs')).status, 200);
});

test('malformed JSON: 400 MALFORMED_JSON', async () => {
  await expectError(http(url, 'POST', '/v1/vifs', '{"guest": "a",', auth()), 400, 'MALFORMED_JSON');
  await expectError(http(url, 'PATCH', '/v1/vifs/a0', '', auth()), 400, 'MALFORMED_JSON');
});

test('a body over 1 MiB: 413 BODY_TOO_LARGE', async () => {
  await expectError(http(url, 'PUT', '/v1/config', JSON.stringify({ guests: [], pad: 'x'.repeat(1 << 20) }), auth()), 413, 'BODY_TOO_LARGE');
});

test('unknown fields: 400 UNKNOWN_FIELD naming the field', async () => {
  const e = await expectError(http(url, 'POST', '/v1/vifs', { guest: 'a', mtux: 1500 }, auth()), 400, 'UNKNOWN_FIELD');
  assert.match(e.message!, /mtux/);
  await expectError(http(url, 'PATCH', '/v1/vifs/a0', { coalesce: { frames: 2, frame: 1 } }, auth()), 400, 'UNKNOWN_FIELD');
  await expectError(http(url, 'DELETE', '/v1/vifs/a0?force=true', undefined, auth()), 400, 'UNKNOWN_FIELD');
});

test('out-of-range and wrongly typed values: 400 OUT_OF_RANGE / BAD_TYPE / BAD_FORMAT; refinements: CONFIG_INVALID with the path', async () => {
  await expectError(http(url, 'PATCH', '/v1/vifs/a0', { mtu: 9001 }, auth()), 400, 'OUT_OF_RANGE');
  await expectError(http(url, 'PATCH', '/v1/vifs/a0', { mtu: 67 }, auth()), 400, 'OUT_OF_RANGE');
  await expectError(http(url, 'POST', '/v1/vifs', { guest: 'a', segment: 99999 }, auth()), 400, 'OUT_OF_RANGE');
  await expectError(http(url, 'PATCH', '/v1/vifs/a0', {}, auth()), 400, 'OUT_OF_RANGE');
  await expectError(http(url, 'PATCH', '/v1/vifs/a0', { mtu: '1500' }, auth()), 400, 'BAD_TYPE');
  await expectError(http(url, 'PATCH', '/v1/vifs/a0', { mac: 'not-a-mac' }, auth()), 400, 'BAD_FORMAT');
  await expectError(http(url, 'POST', '/v1/vifs', { mtu: 1500 }, auth()), 400, 'MISSING_FIELD');
  const e = await expectError(http(url, 'PATCH', '/v1/vifs/a0', { mac: '03:00:00:00:00:01' }, auth()), 400, 'CONFIG_INVALID');
  assert.match(e.message!, /config: guests\.0\.vifs\.0\.mac: must be a unicast MAC/);
  const q = await expectError(http(url, 'POST', '/v1/vifs', { guest: 'a', queueSize: 100 }, auth()), 400, 'CONFIG_INVALID');
  assert.match(q.message!, /guests\.0\.vifs\.1\.queueSize: must be a power of two/);
});

test('a VIF or guest that does not exist: 404 NO_SUCH_VIF / NO_SUCH_GUEST', async () => {
  await expectError(http(url, 'PATCH', '/v1/vifs/nope', { mtu: 1400 }, auth()), 404, 'NO_SUCH_VIF');
  await expectError(http(url, 'DELETE', '/v1/vifs/nope', undefined, auth()), 404, 'NO_SUCH_VIF');
  await expectError(http(url, 'GET', '/v1/vifs/nope'), 404, 'NO_SUCH_VIF');
  await expectError(http(url, 'POST', '/v1/vifs', { guest: 'nobody' }, auth()), 404, 'NO_SUCH_GUEST');
  await expectError(http(url, 'GET', '/v1/nothing-here'), 404, 'NOT_FOUND');
});

test('conflicts: an existing name, a taken MAC, a stale generation: 409 with a code', async () => {
  await expectError(http(url, 'POST', '/v1/vifs', { guest: 'b', name: 'a0' }, auth()), 409, 'VIF_EXISTS');
  const dup = await expectError(http(url, 'PATCH', '/v1/vifs/b0', { mac: '02:00:00:00:00:0a' }, auth()), 409, 'DUPLICATE_MAC');
  assert.match(dup.message!, /guests\.1\.vifs\.0\.mac: duplicate MAC 02:00:00:00:00:0a/);
  await expectError(http(url, 'PATCH', '/v1/vifs/a0', { mtu: 1400 }, { ...auth(), 'if-match': `"${d.ctl.generation - 1}"` }), 409, 'GENERATION_MISMATCH');
  await expectError(http(url, 'PUT', '/v1/config', { device: { name: 'dev0', engines: 2 }, guests: [] }, auth()), 409, 'NEEDS_RESTART');
});

test('concurrent conflicting changes are serialised: one wins, the other gets 409, the device holds the winner', async () => {
  const [r1, r2] = await Promise.all([
    http(url, 'POST', '/v1/vifs', { guest: 'a', name: 'race', mac: '02:00:00:00:01:01' }, auth()),
    http(url, 'POST', '/v1/vifs', { guest: 'b', name: 'race', mac: '02:00:00:00:01:02' }, auth()),
  ]);
  assert.deepEqual([r1.status, r2.status].sort(), [201, 409]);
  const lost = r1.status === 409 ? r1 : r2;
  assert.equal(lost.body.code, 'VIF_EXISTS');
  const won = r1.status === 201 ? '02:00:00:00:01:01' : '02:00:00:00:01:02';
  const race = d.ctl.runtime.vifs.get('race')!;
  assert.equal(race.vif.mac, won);
  assert.equal(race.guest, r1.status === 201 ? 'a' : 'b');
  assert.equal([...d.ctl.runtime.devices.get('dev0')!.device.vifs()].filter((v) => v.id === 'race').length, 1);

  // Two changes that each are fine alone but not together (the same MAC for two VIFs).
  const g = d.ctl.generation;
  const [p1, p2] = await Promise.all([
    http(url, 'PATCH', '/v1/vifs/a0', { mac: '02:00:00:00:02:02' }, auth()),
    http(url, 'PATCH', '/v1/vifs/b0', { mac: '02:00:00:00:02:02' }, auth()),
  ]);
  assert.deepEqual([p1.status, p2.status].sort(), [200, 409]);
  assert.equal((p1.status === 409 ? p1 : p2).body.code, 'DUPLICATE_MAC');
  assert.equal(d.ctl.generation, g + 1);
  const macs = [...d.ctl.runtime.vifs.values()].map((r) => r.vif.mac);
  assert.equal(macs.filter((m) => m === '02:00:00:00:02:02').length, 1);

  // Optimistic concurrency: two clients that read the same generation; the second is refused.
  const gen = d.ctl.generation;
  const [o1, o2] = await Promise.all([
    http(url, 'PATCH', '/v1/vifs/a0', { mtu: 1300 }, { ...auth(), 'if-match': `"${gen}"` }),
    http(url, 'PATCH', '/v1/vifs/b0', { mtu: 1300 }, { ...auth(), 'if-match': `"${gen}"` }),
  ]);
  assert.deepEqual([o1.status, o2.status].sort(), [200, 409]);
  assert.equal((o1.status === 409 ? o1 : o2).body.code, 'GENERATION_MISMATCH');
  assert.equal((await http(url, 'DELETE', '/v1/vifs/race', undefined, auth())).status, 200);
});

test('PATCH changes MTU and link in place (same VIF, same slot); segment replaces it; both are reported', async () => {
  const before = d.ctl.runtime.vifs.get('a0')!.vif;
  const mtu = before.mtu; // 1300 or 1500: whichever won the race above
  const r = await http(url, 'PATCH', '/v1/vifs/a0', { mtu: 1000, linkUp: false }, auth());
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.summary, [`vif a0 changed (linkUp true -> false, mtu ${mtu} -> 1000)`]);
  const now = d.ctl.runtime.vifs.get('a0')!.vif;
  assert.equal(now, before, 'changed in place');
  assert.equal(now.mtu, 1000);
  assert.equal(now.settings.linkUp, false);
  const s = await http(url, 'PATCH', '/v1/vifs/a0', { segment: 3, linkUp: true }, auth());
  assert.equal(s.status, 200);
  assert.equal((s.body.changes as { action: string }[])[0]!.action, 'replaced');
  const replaced = d.ctl.runtime.vifs.get('a0')!.vif;
  assert.notEqual(replaced, before);
  assert.equal(before.state, 'destroyed');
  assert.equal(replaced.segment, 3);
  assert.equal(replaced.mac, '02:00:00:00:02:02', 'the MAC stays');
});

test('dry run reports the plan and changes nothing', async () => {
  const before = deviceState();
  const r = await http(url, 'POST', '/v1/vifs?dryRun=true', { guest: 'b', name: 'b9' }, auth());
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.summary, ['vif b9 added']);
  assert.equal(r.body.dryRun, true);
  assert.equal(deviceState(), before);
});

test('the CLI client reports API errors with their code', async () => {
  await assert.rejects(unix.call('PATCH', '/v1/vifs/zz', { mtu: 1400 }), (e: unknown) => e instanceof ClientError && e.code === 'NO_SUCH_VIF' && e.status === 404);
});

test('PUT /v1/config (YAML or JSON): applies only the difference; an invalid one changes nothing and names the path', async () => {
  const cur = (await http(url, 'GET', '/v1/config')).body as { config: { guests: { vifs: Record<string, unknown>[] }[] } };
  const doc = structuredClone(cur.config);
  doc.guests[1]!.vifs.push({ name: 'b1' });
  const r = await http(url, 'PUT', '/v1/config', doc, auth());
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.summary, ['vif b1 added']);
  await until(() => d.ctl.runtime.vifs.get('b1')?.vif.guestId === 'b', 'b1 plugged into b');

  const bad = structuredClone(doc);
  (bad.guests[1]!.vifs[1] as Record<string, unknown>).mtu = 70000;
  (bad as Record<string, unknown>).guestz = [];
  const e = await expectError(http(url, 'PUT', '/v1/config', bad, auth()), 400, 'CONFIG_INVALID');
  assert.match(e.message!, /config: guests\.1\.vifs\.1\.mtu: must be <= 9000/);
  assert.match(e.message!, /config: guestz: unknown key \(did you mean "guests"\?\)/);
  await expectError(http(url, 'PUT', '/v1/config', 'device: {name: dev0}\nguests: [ {name: a, module: x.js, vifs: [{mtu: "big"}]} ]\n', { ...auth(), 'content-type': 'application/yaml' }), 400, 'CONFIG_INVALID');
  await expectError(http(url, 'PUT', '/v1/config', 'device: [', { ...auth(), 'content-type': 'application/yaml' }), 400, 'CONFIG_INVALID');
  await expectError(http(url, 'PUT', '/v1/config', '<x/>', { ...auth(), 'content-type': 'application/xml' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
});

test('a step that fails half-way (a guest that cannot start): 422 APPLY_FAILED, the steps before it rolled back', async () => {
  const bad = join(dir, 'broken-guest.mjs');
  writeFileSync(bad, 'throw new Error("this guest cannot start");\n');
  const cur = (await http(url, 'GET', '/v1/config')).body as { config: { guests: Record<string, unknown>[] } };
  const doc = structuredClone(cur.config);
  (doc.guests[1]!.vifs as unknown[]).length = 0; // b0 is removed first (steps remove before they start)...
  doc.guests.push({ name: 'broken', module: bad, vifs: [{ name: 'x0' }] });
  const b0 = d.ctl.runtime.vifs.get('b0')!;
  const gen = d.ctl.generation;
  const docBefore = JSON.stringify(d.ctl.doc);
  const r = await http(url, 'PUT', '/v1/config', doc, auth());
  assert.equal(r.status, 422);
  assert.equal(r.body.code, 'APPLY_FAILED');
  assert.match(r.body.message!, /start guest broken failed: .*this guest cannot start.*rolled back/s);
  assert.ok((r.body.applied as string[]).includes('remove VIF b0'), String(r.body.applied));
  assert.equal(r.body.rolledBack, true);
  assert.equal(b0.vif.state, 'destroyed', 'b0 was really removed...');
  const again = d.ctl.runtime.vifs.get('b0')!; // ...and created again by the rollback
  assert.equal(again.vif.state, 'ready');
  assert.equal(again.vif.mac, b0.vif.mac);
  assert.equal(again.guest, 'b');
  await until(() => again.vif.guestId === 'b', 'b0 plugged into b again');
  assert.equal(d.ctl.runtime.guests.has('broken'), false);
  assert.equal(d.ctl.generation, gen);
  assert.equal(JSON.stringify(d.ctl.doc), docBefore);
});

test('two VIFs of a segment swapping MACs in one change: both replaced, MACs swapped', async () => {
  const seg = d.ctl.runtime.vifs.get('a0')!.vif.segment;
  const cur = (await http(url, 'GET', '/v1/config')).body as { config: { guests: { vifs: Record<string, unknown>[] }[] } };
  const doc = structuredClone(cur.config);
  doc.guests[1]!.vifs.find((v) => v.name === 'b0')!.segment = seg; // same segment first
  assert.equal((await http(url, 'PUT', '/v1/config', doc, auth())).status, 200);
  const a = d.ctl.runtime.vifs.get('a0')!.vif.mac;
  const b = d.ctl.runtime.vifs.get('b0')!.vif.mac;
  doc.guests[0]!.vifs.find((v) => v.name === 'a0')!.mac = b;
  doc.guests[1]!.vifs.find((v) => v.name === 'b0')!.mac = a;
  const r = await http(url, 'PUT', '/v1/config', doc, auth());
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual((r.body.changes as { name: string; action: string }[]).map((c) => `${c.name} ${c.action}`).sort(), ['a0 replaced', 'b0 replaced']);
  assert.equal(d.ctl.runtime.vifs.get('a0')!.vif.mac, b);
  assert.equal(d.ctl.runtime.vifs.get('b0')!.vif.mac, a);
});

test('a guest whose worker exited: shown as done, its VIF reclaimed; the next change starts it again', async () => {
  const mod = join(dir, 'quits.mjs');
  writeFileSync(mod, 'export default async function main(ctx) { await ctx.vif(); for (;;) if ((await ctx.message()) === "exit") return "bye"; }\n');
  const cur = (await http(url, 'GET', '/v1/config')).body as { config: { guests: Record<string, unknown>[] } };
  const doc = structuredClone(cur.config);
  doc.guests.push({ name: 'q', module: mod, vifs: [{ name: 'q0' }] });
  assert.equal((await http(url, 'PUT', '/v1/config', doc, auth())).status, 200);
  const q0 = d.ctl.runtime.vifs.get('q0')!.vif;
  d.ctl.runtime.guests.get('q')!.guest.send('exit');
  await until(() => q0.state === 'destroyed', 'q0 reclaimed when q exits');
  const guests = await unix.call<{ name: string; state: string }[]>('GET', '/v1/guests');
  assert.equal(guests.find((g) => g.name === 'q')!.state, 'done');
  const r = await http(url, 'PUT', '/v1/config', doc, auth()); // the same document
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.summary, ['guest q added', 'vif q0 added']);
  const again = d.ctl.runtime.vifs.get('q0')!.vif;
  assert.notEqual(again, q0);
  assert.equal(again.mac, q0.mac, 'the same MAC');
  await until(() => again.guestId === 'q', 'q0 plugged into the new q');
  doc.guests.pop();
  assert.deepEqual((await http(url, 'PUT', '/v1/config', doc, auth())).body.summary, ['guest q removed', 'vif q0 removed']);
});

test('devices are added and removed by a new document (an echo device with its own guest VIF)', async () => {
  const cur = (await http(url, 'GET', '/v1/config')).body as { config: Record<string, unknown> & { guests: Record<string, unknown>[] } };
  const { device, ...rest } = structuredClone(cur.config) as Record<string, unknown>;
  const doc = { ...rest, devices: [device, { name: 'dev1', uplink: 'echo', engines: 2 }] } as unknown as { guests: { vifs: Record<string, unknown>[] }[] };
  doc.guests[0]!.vifs.forEach((v) => (v.device = 'dev0'));
  doc.guests[1]!.vifs.forEach((v) => (v.device = 'dev0'));
  doc.guests[1]!.vifs.push({ name: 'e0', device: 'dev1' });
  const r = await http(url, 'PUT', '/v1/config', doc, auth());
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.summary, ['device dev1 added', 'vif e0 added']);
  const e0 = d.ctl.runtime.vifs.get('e0')!;
  assert.equal(e0.vif.device.name, 'dev1');
  assert.equal(d.ctl.runtime.devices.get('dev1')!.device.engineCount, 2);
  // b sends broadcasts on e0 too; the echo uplink sends them back (MACs swapped, so to e0)
  await until(() => e0.vif.counters().rx_frames > 0, 'echo frames delivered to e0');
  const ups = await unix.call<{ device: string; kind: string }[]>('GET', '/v1/uplinks');
  assert.deepEqual(ups.map((u) => `${u.device}:${u.kind}`).sort(), ['dev0:null', 'dev1:echo']);
  doc.guests[1]!.vifs.pop();
  (doc as unknown as { devices: unknown[] }).devices.pop();
  const back = await http(url, 'PUT', '/v1/config', doc, auth());
  assert.deepEqual(back.body.summary, ['device dev1 removed', 'vif e0 removed']);
  assert.equal(e0.vif.state, 'destroyed');
  assert.equal(d.ctl.runtime.devices.has('dev1'), false);
});

test('reload (SIGHUP path): the file again; an invalid file changes nothing and says where (with its line)', async () => {
  writeFileSync(cfgFile, readFileSync(cfgFile, 'utf8').replace('vifs: [ { name: b0 } ]', 'vifs: [ { name: b0, mtu: 90000 } ]'));
  const before = deviceState();
  await assert.rejects(d.ctl.reload(), (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID' && /config: guests\.1\.vifs\.0\.mtu: must be <= 9000 \(.*svnic\.yaml:4\)/.test(e.message));
  assert.equal(deviceState(), before);
  daemonConfig(dir); // the original file: a0 as in the file (segment 0, MTU 1500, its MAC), b1 removed
  const b0 = d.ctl.runtime.vifs.get('b0')!.cfg; // its MTU depends on which PATCH won a race above
  const b0mac = d.ctl.runtime.vifs.get('b0')!.vif.mac;
  const r = await d.ctl.reload();
  const byName = new Map(r.changes.map((c) => [c.name, c]));
  assert.equal(byName.get('a0')?.action, 'replaced');
  assert.deepEqual(byName.get('a0')?.fields?.segment, { from: 3, to: 0 });
  assert.equal(byName.get('b1')?.action, 'removed');
  assert.equal(byName.get('b0')?.action, b0.segment !== 0 ? 'replaced' : b0.mtu !== 1500 ? 'changed' : undefined);
  assert.deepEqual([...byName.keys()].sort(), ['a0', 'b0', 'b1'].filter((n) => n !== 'b0' || b0.segment !== 0 || b0.mtu !== 1500));
  assert.equal(d.ctl.runtime.vifs.get('b0')!.vif.mac, b0mac, 'b0 (no MAC in the file) keeps the MAC it had');
  for (const n of ['a0', 'b0']) assert.equal(d.ctl.runtime.vifs.get(n)!.vif.mtu, 1500);
  assert.equal(d.ctl.runtime.vifs.get('a0')!.vif.mac, '02:00:00:00:00:0a');
  assert.equal(d.ctl.runtime.vifs.has('b1'), false);
  void TRAFFIC;
});

test('without --config: starts empty, is managed through PUT /v1/config, reload is 409 NO_CONFIG_FILE', async () => {
  const sock = join(dir, 'bare.sock');
  const bare = await startDaemon({ socket: sock, persist: false, log: () => {} });
  try {
    const c = new Client({ socket: sock });
    assert.deepEqual(await c.call('GET', '/v1/vifs'), []);
    const r = await c.call<{ summary: string[] }>('PUT', '/v1/config', { device: { name: 'd9' }, guests: [{ name: 'g', module: TRAFFIC, args: { pps: 0 }, vifs: [{ name: 'g0' }] }] });
    assert.deepEqual(r.summary, ['device d9 added', 'guest g added', 'vif g0 added']);
    await assert.rejects(c.call('POST', '/v1/reload'), (e: unknown) => e instanceof ClientError && e.code === 'NO_CONFIG_FILE' && e.status === 409);
  } finally {
    await bare.close();
  }
});
