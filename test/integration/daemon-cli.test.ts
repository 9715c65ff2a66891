/** The CLI against a running daemon: vif ls|add|set|rm, stats, top (non-terminal: one frame), errors. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { daemonConfig, ROOT, tmp } from '../helpers/daemon.js';
import { until } from '../helpers/until.js';

let d: Daemon;
let dir: string;

before(async () => {
  dir = tmp('sv7-cli-');
  d = await startDaemon({ config: daemonConfig(dir, { pps: 100 }), socket: join(dir, 'api.sock'), persist: false, log: () => {} });
});
after(async () => {
  await d?.close();
  rmSync(dir, { recursive: true, force: true });
});

function svnic(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [join(ROOT, 'bin/svnic'), ...args], { env: { ...process.env, SVNIC_SOCKET: d.socket }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    c.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    c.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('svnic vif ls: a table by default, JSON with --json', { timeout: 60_000 }, async () => {
  const t = await svnic('vif', 'ls');
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /^VIF +GUEST +DEVICE +STATE +MAC +MTU/);
  assert.match(t.stdout, /\na0 +a +dev0 +ready +02:00:00:00:00:0a +1500/);
  const j = await svnic('vif', 'ls', '--json');
  assert.deepEqual((JSON.parse(j.stdout) as { name: string }[]).map((v) => v.name).sort(), ['a0', 'b0']);
});

test('svnic vif add / set / rm report what changed; errors print the code and exit 1', { timeout: 60_000 }, async () => {
  const add = await svnic('vif', 'add', '--guest', 'b', '--name', 'b7', '--mtu', '9000', '--multicast', '01:00:5e:00:00:01');
  assert.equal(add.code, 0, add.stderr);
  assert.equal(add.stdout, `vif b7 added\ngeneration ${d.ctl.generation}\n`);
  assert.deepEqual(d.ctl.runtime.vifs.get('b7')!.vif.settings.multicast, ['01:00:5e:00:00:01']);
  const set = await svnic('vif', 'set', 'b7', '--link', 'down', '--mtu', '1500');
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, /^vif b7 changed \(linkUp true -> false, mtu 9000 -> 1500\)\n/);
  const dry = await svnic('vif', 'rm', 'b7', '--dry-run');
  assert.match(dry.stdout, /vif b7 removed\ndry run: nothing changed/);
  assert.ok(d.ctl.runtime.vifs.has('b7'));
  const rm = await svnic('vif', 'rm', 'b7', '--json');
  assert.equal(rm.code, 0);
  assert.deepEqual(JSON.parse(rm.stdout).summary, ['vif b7 removed']);
  const bad = await svnic('vif', 'set', 'nope', '--mtu', '1400');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^svnic: NO_SUCH_VIF: no VIF "nope"/);
  const range = await svnic('vif', 'set', 'a0', '--mtu', '99999');
  assert.equal(range.code, 1);
  assert.match(range.stderr, /svnic: OUT_OF_RANGE: body\.mtu: must be <= 9000/);
  const none = await svnic('vif', 'ls', '--socket', join(dir, 'nobody.sock'));
  assert.equal(none.code, 3);
  assert.match(none.stderr, /NO_DAEMON: no svnicd at .*nobody\.sock/);
});

test('svnic stats and top show per-VIF rates and the engine', { timeout: 60_000 }, async () => {
  await until(() => d.sampler.latest().vifs.some((v) => v.txPps > 0), 'a non-zero rate sampled');
  const s = await svnic('stats');
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /FROM_GUEST\/s/);
  assert.match(s.stdout, /\na0 +a +dev0 +ready /);
  assert.match(s.stdout, /\ndev0 +0 +\d+\.\d%/);
  const j = JSON.parse((await svnic('stats', '--json')).stdout) as { vifs: { name: string; txFrames: number }[] };
  assert.ok(j.vifs.find((v) => v.name === 'a0')!.txFrames > 0);
  const top = await svnic('top');
  assert.equal(top.code, 0, top.stderr);
  assert.match(top.stdout, /^svnic top - .*api\.sock - .* - 2 VIFs - from guests/);
  assert.match(top.stdout, /dev0\/0 \[[#.]{20}\] +\d+% busy/);
});

test('svnic stats --watch --json prints one sample per interval until stopped', { timeout: 60_000 }, async () => {
  const c = spawn(process.execPath, [join(ROOT, 'bin/svnic'), 'stats', '--watch', '--json', '--interval', '0.2'], { env: { ...process.env, SVNIC_SOCKET: d.socket }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  c.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  await until(() => out.split('\n').filter(Boolean).length >= 3, 'three samples printed');
  c.kill('SIGTERM');
  const lines = out.split('\n').filter(Boolean).slice(0, 3).map((l) => JSON.parse(l) as { t: number; vifs: unknown[] });
  for (const l of lines) assert.equal(l.vifs.length, 2);
});

test('svnic config show | apply FILE | reload: YAML round trip, dry run, errors with paths', { timeout: 60_000 }, async () => {
  const shown = await svnic('config', 'show');
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /^# generation \d+\n/);
  assert.match(shown.stdout, /name: a0\n\s+mac: 02:00:00:00:00:0a/);
  const file = join(dir, 'edited.yaml');
  writeFileSync(file, shown.stdout.replace('name: a0\n', 'name: a0\n        mtu: 1280\n'));
  const dry = await svnic('config', 'apply', file, '--dry-run');
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal(dry.stdout, 'vif a0 changed (mtu 1500 -> 1280)\ndry run: nothing changed\n');
  assert.equal(d.ctl.runtime.vifs.get('a0')!.vif.mtu, 1500);
  const applied = await svnic('config', 'apply', file);
  assert.match(applied.stdout, /^vif a0 changed \(mtu 1500 -> 1280\)\ngeneration \d+\n$/);
  assert.equal(d.ctl.runtime.vifs.get('a0')!.vif.mtu, 1280);
  writeFileSync(file, 'device: { name: dev0 }\nguests: [ { name: a, module: x.js, vifs: [ { mtu: 1 } ] } ]\n');
  const bad = await svnic('config', 'apply', file);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /CONFIG_INVALID: config: guests\.0\.vifs\.0\.mtu: must be >= 68/);
  const reload = await svnic('config', 'reload');
  assert.equal(reload.code, 0, reload.stderr);
  assert.match(reload.stdout, /vif a0 changed \(mtu 1280 -> 1500\)/);
});
