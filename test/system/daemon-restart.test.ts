/**
 * svnicd as a process: SIGKILL and a restart from the same config bring back the same VIFs
 * (names, guests, devices, MACs, settings), including changes made through the API; SIGHUP applies
 * the edited file's difference, and an invalid file changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '../../src/cli/client.js';
import { daemonConfig, tmp } from '../helpers/daemon.js';
import { spawnDaemon, type Spawned } from '../helpers/spawn-daemon.js';
import { until } from '../helpers/until.js';

const LIMIT = { timeout: 120_000 }; // a hang fails the test; not a timing check

interface VifRow { name: string; guest: string; device: string; mac: string; mtu: number; segment: number; linkUp: boolean; state: string; multicast: string[] }
const identity = (vifs: VifRow[]) => vifs.map(({ name, guest, device, mac, mtu, segment, linkUp, multicast }) => ({ name, guest, device, mac, mtu, segment, linkUp, multicast }))
  .sort((a, b) => a.name.localeCompare(b.name));

async function stopped(s: Spawned): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  await s.exited;
}

test('SIGKILL, then a restart from the same config: the same VIFs, including API changes', LIMIT, async () => {
  const dir = tmp('sv7-restart-');
  const cfg = daemonConfig(dir);
  const args = ['--config', cfg, '--socket', join(dir, 'api.sock'), '--state-dir', join(dir, 'state')];
  let d = await spawnDaemon(args);
  try {
    const c = new Client({ socket: d.ready.socket });
    await c.call('POST', '/v1/vifs', { guest: 'a', mtu: 9000 }); // named a-eth0 by the daemon
    await c.call('POST', '/v1/vifs', { guest: 'b', name: 'b-extra', segment: 2, multicast: ['01:00:5e:00:00:07'] });
    await c.call('PATCH', '/v1/vifs/b0', { mtu: 1400, linkUp: false });
    await c.call('DELETE', '/v1/vifs/a0');
    const before = identity(await c.call<VifRow[]>('GET', '/v1/vifs'));
    assert.deepEqual(before.map((v) => v.name), ['a-eth0', 'b-extra', 'b0']);
    assert.match(before[0]!.mac, /^02:53:/, 'a MAC the daemon chose');

    d.child.kill('SIGKILL');
    await d.exited;
    assert.ok(existsSync(d.ready.socket), 'a killed daemon leaves its socket behind');

    d = await spawnDaemon(args);
    assert.match(d.stderr(), /restoring the state saved at/);
    const c2 = new Client({ socket: d.ready.socket });
    const after = await c2.call<VifRow[]>('GET', '/v1/vifs');
    assert.deepEqual(identity(after), before);
    await until(async () => (await c2.call<VifRow[]>('GET', '/v1/vifs')).every((v) => v.state === 'ready'), 'VIFs ready');
    const guests = await c2.call<{ name: string; state: string; vifs: string[] }[]>('GET', '/v1/guests');
    assert.deepEqual(guests.map((g) => [g.name, g.state, g.vifs.sort()]), [['a', 'running', ['a-eth0']], ['b', 'running', ['b-extra', 'b0']]]);

    // A changed config file wins over the saved state, but a VIF it leaves without a MAC keeps its MAC.
    const b0mac = after.find((v) => v.name === 'b0')!.mac;
    d.child.kill('SIGKILL');
    await d.exited;
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('args: { pps: 50 }, vifs: [ { name: a0', 'args: { pps: 40 }, vifs: [ { name: a0'));
    d = await spawnDaemon(args);
    assert.match(d.stderr(), /changed since the state was saved/);
    const fromFile = identity(await new Client({ socket: d.ready.socket }).call<VifRow[]>('GET', '/v1/vifs'));
    assert.deepEqual(fromFile.map((v) => v.name), ['a0', 'b0']);
    assert.equal(fromFile.find((v) => v.name === 'b0')!.mac, b0mac);
    assert.equal(fromFile.find((v) => v.name === 'b0')!.mtu, 1500, 'the file\'s settings');
  } finally {
    await stopped(d);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGHUP applies the edited file\'s difference; an invalid file changes nothing; SIGTERM removes the socket', LIMIT, async () => {
  const dir = tmp('sv7-hup-');
  const cfg = daemonConfig(dir);
  const d = await spawnDaemon(['--config', cfg, '--socket', join(dir, 'api.sock'), '--no-persist']);
  try {
    const c = new Client({ socket: d.ready.socket });
    const gen = d.ready.generation;
    const original = readFileSync(cfg, 'utf8');
    writeFileSync(cfg, original.replace('vifs: [ { name: b0 } ]', 'vifs: [ { name: b0, mtu: 90000 } ]'));
    d.child.kill('SIGHUP');
    await until(() => /reload refused \(CONFIG_INVALID\)/.test(d.stderr()), 'the daemon refuses the invalid file', 30_000).catch((e: Error) => assert.fail(`${e.message}; daemon exit code ${d.child.exitCode} signal ${d.child.signalCode}; daemon stderr:\n${d.stderr()}`));
    assert.match(d.stderr(), /config: guests\.1\.vifs\.0\.mtu: must be <= 9000 \(.*svnic\.yaml:4\)/);
    assert.equal((await c.call<{ generation: number }>('GET', '/v1/health')).generation, gen);

    writeFileSync(cfg, original.replace('vifs: [ { name: b0 } ]', 'vifs: [ { name: b0, mtu: 1280 }, { name: b1 } ]'));
    d.child.kill('SIGHUP');
    await until(async () => (await c.call<{ generation: number }>('GET', '/v1/health')).generation === gen + 1, 'the reload applied');
    const vifs = await c.call<VifRow[]>('GET', '/v1/vifs');
    assert.equal(vifs.find((v) => v.name === 'b0')!.mtu, 1280);
    assert.ok(vifs.find((v) => v.name === 'b1'));
    assert.match(d.stderr(), /vif b0 changed \(mtu 1500 -> 1280\)/);
    assert.match(d.stderr(), /vif b1 added/);

    d.child.kill('SIGTERM');
    const r = await d.exited;
    assert.equal(r.code, 0);
    assert.equal(existsSync(d.ready.socket), false);
  } finally {
    await stopped(d);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an invalid config at startup: exit status 2, every problem with its path and line, nothing started', LIMIT, async () => {
  const dir = tmp('sv7-bad-');
  const cfg = join(dir, 'bad.yaml');
  writeFileSync(cfg, 'device: { engines: 99 }\nguests:\n  - { name: a, modul: x.js }\n');
  try {
    await assert.rejects(spawnDaemon(['--config', cfg, '--socket', join(dir, 'api.sock'), '--no-persist']), (e: Error) => {
      assert.match(e.message, /exited \(code 2/);
      assert.match(e.message, /config: device\.engines: must be <= 16 \(.*bad\.yaml:1\)/);
      assert.match(e.message, /config: guests\.0\.modul: unknown key \(did you mean "module"\?\)/);
      assert.match(e.message, /the config is invalid; nothing was started/);
      return true;
    });
    assert.equal(existsSync(join(dir, 'api.sock')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
