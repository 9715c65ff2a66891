import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/schema.js';
import { applyConfig } from '../../src/config/apply.js';
import { Hypervisor } from '../../src/hypervisor/hypervisor.js';
import { SvnicError } from '../../src/hypervisor/errors.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const EXAMPLE = join(ROOT, 'examples/svnic.yaml');
const HELLO = join(ROOT, 'examples/hello-guest.ts');
const LIMIT = { timeout: 60_000 }; // a hang fails the test instead of the whole run; not a timing check

function tmp(): string {
  return tempDir('svnic-run-');
}

/** A copy of the example whose guests wait for more greetings than will ever come. */
function foreverConfig(dir: string): string {
  const f = join(dir, 'forever.yaml');
  writeFileSync(f, [
    'device: { uplink: echo }',
    'guests:',
    ...['a', 'b'].map((n) => `  - { name: ${n}, module: ${JSON.stringify(HELLO)}, args: { expect: 1000 }, vifs: [ { name: ${n}-eth0 } ] }`),
    '',
  ].join('\n'));
  return f;
}

function runCli(args: string[], onStderr?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/svnic'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
      onStderr?.(stderr, child);
    });
    // if it hangs, the test times out; do not let the child keep this process alive after that
    const kill = setTimeout(() => child.kill('SIGKILL'), LIMIT.timeout).unref();
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(kill);
      done({ code, signal, stdout, stderr });
    });
  });
}

test('the example config runs: guests greet each other through the device and the echo uplink', LIMIT, async (t) => {
  const config = loadConfig(EXAMPLE);
  const run = await applyConfig(config);
  t.after(() => run.stop()); // also when an assertion fails: live workers would keep the process alive
  assert.deepEqual([...run.guests.keys()], ['a', 'b', 'c']);
  assert.deepEqual([...run.vifs.keys()], ['a-eth0', 'b-eth0', 'c-eth0']);
  await run.guestsExited;
  for (const g of run.guests.values()) {
    const { heard } = (await g.done()) as { heard: string[] };
    // the two other guests' broadcasts, and its own sent back by the echo uplink
    assert.deepEqual([...heard].sort(), ['hello from a', 'hello from b', 'hello from c']);
  }
  const snap = await run.stop();
  assert.strictEqual(await run.stop(), snap, 'stop() is idempotent');
  assert.deepEqual(snap.guests.map((g) => [g.name, g.state]), [['a', 'done'], ['b', 'done'], ['c', 'done']]);
  assert.equal(snap.vifs.length, 3);
  for (const v of snap.vifs) {
    assert.equal(v.counters.tx_frames, 1, v.name);
    assert.equal(v.counters.rx_frames, 3, v.name);
    assert.ok(v.counters.rx_bytes > 0);
    assert.equal(v.drops, 0, `${v.name}: ${JSON.stringify(v.dropReasons)}`);
    assert.equal(v.state, 'destroyed'); // reclaimed when its guest exited
  }
  assert.deepEqual(snap.vifs.map((v) => [v.name, v.guest, v.mac]), [
    ['a-eth0', 'a', '02:00:00:00:00:0a'], ['b-eth0', 'b', '02:00:00:00:00:0b'], ['c-eth0', 'c', '02:53:00:00:00:00'],
  ]);
  const [dev] = snap.devices;
  assert.equal(dev!.uplink, 'echo');
  assert.equal(dev!.counters.uplink_tx_frames, 3);
  assert.equal(dev!.counters.uplink_rx_frames, 3);
  assert.equal(dev!.uplinkCounters.echoed_frames, 3);
  assert.equal(dev!.drops, 0);
  assert.equal(dev!.unaccounted, 0);
});

test('stop() while guests are running stops them, and the counters show the traffic so far', LIMIT, async (t) => {
  const run = await applyConfig(loadConfig(foreverConfig(tmp())));
  t.after(() => run.stop());
  // wait until each guest has received its peer's greeting and its own echo
  for (const v of run.vifs.values()) {
    while (v.counters().rx_frames < 2) await new Promise((r) => setTimeout(r, 5));
  }
  const snap = await run.stop();
  assert.deepEqual(snap.guests.map((g) => g.state), ['stopped', 'stopped']);
  for (const g of run.guests.values()) assert.equal(g.running, false);
  for (const v of snap.vifs) {
    assert.equal(v.counters.tx_frames, 1);
    assert.equal(v.counters.rx_frames, 2);
  }
  await run.guestsExited;
});

test('a wire joins two devices from the config; a multi-engine, hypervisor-interrupt setup runs', LIMIT, async (t) => {
  const module = HELLO;
  const config = validateConfig({
    devices: [
      { name: 'left', engines: 2, uplink: { kind: 'wire', peer: 'right' } },
      { name: 'right', interruptMode: 'hypervisor' },
    ],
    guests: [
      { name: 'a', module, args: { expect: 2 }, vifs: [{ device: 'left', engine: 0 }] },
      { name: 'b', module, args: { expect: 2 }, vifs: [{ device: 'left', engine: 1 }] },
      { name: 'c', module, args: { expect: 2 }, vifs: [{ device: 'right' }] },
    ],
  }, { resolveModule: (m) => (m.endsWith('.ts') ? join(ROOT, 'dist/examples/hello-guest.js') : m) });
  const run = await applyConfig(config);
  t.after(() => run.stop());
  await run.guestsExited;
  for (const g of run.guests.values()) {
    const { heard } = (await g.done()) as { heard: string[] };
    assert.deepEqual([...heard].sort(), ['a', 'b', 'c'].filter((n) => n !== g.id).map((n) => `hello from ${n}`));
  }
  const snap = await run.stop();
  assert.deepEqual(snap.devices.map((d) => d.uplink), ['wire', 'wire']);
  assert.deepEqual(snap.vifs.map((v) => v.device), ['left', 'left', 'right']);
  for (const v of snap.vifs) assert.deepEqual([v.counters.tx_frames, v.counters.rx_frames, v.drops], [1, 2, 0], v.name);
});

test('a failure while starting stops what was started and names the config path', LIMIT, async (t) => {
  const dir = tmp();
  writeFileSync(join(dir, 'ok.js'), 'export default async (ctx) => { await ctx.message(); };\n');
  writeFileSync(join(dir, 'boom.js'), 'throw new Error("boom at import");\n');
  const hv = new Hypervisor();
  t.after(() => hv.stop());
  const config = validateConfig({
    device: { uplink: 'echo' },
    guests: [
      { name: 'ok', module: join(dir, 'ok.js'), vifs: [{}] },
      { name: 'bad', module: join(dir, 'boom.js'), vifs: [{}] },
    ],
  });
  await assert.rejects(applyConfig(config, { hypervisor: hv }), (e: SvnicError) => {
    assert.equal(e.code, 'GUEST_FAILED');
    assert.match(e.message, /^guests\.1: .*boom at import/s);
    return true;
  });
  for (const g of hv.guests.values()) assert.equal(g.running, false);
  await assert.rejects(hv.devices[0]!.createVif(), (e: SvnicError) => e.code === 'DEVICE_STOPPED');
});

test('a guest whose main throws is reported as failed; the others keep running', LIMIT, async (t) => {
  const dir = tmp();
  writeFileSync(join(dir, 'fail.js'), 'export default async (ctx) => { await ctx.message(); throw new Error("main failed"); };\n');
  const run = await applyConfig(validateConfig({
    guests: [
      { name: 'f', module: join(dir, 'fail.js'), vifs: [{}] },
      { name: 'h', module: join(ROOT, 'dist/examples/hello-guest.js'), args: { expect: 1000 }, vifs: [{}] },
    ],
  }));
  t.after(() => run.stop());
  await run.guests.get('f')!.exited;
  assert.equal(run.guests.get('h')!.running, true);
  const snap = await run.stop();
  assert.equal(snap.guests[0]!.state, 'failed');
  assert.match(snap.guests[0]!.error!, /main failed/);
  assert.equal(snap.guests[1]!.state, 'stopped');
});

test('svnic run with an invalid config exits 2 and names the bad keys by path', LIMIT, async () => {
  const dir = tmp();
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, [
    'device:',
    '  engines: 1',
    'guests:',
    '  - name: a',
    `    modul: ${JSON.stringify(HELLO)}`,
    '    vifs:',
    '      - { mtu: 1500 }',
    '      - { mtu: 9001 }',
    '',
  ].join('\n'));
  const r = await runCli(['run', '--config', bad]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^config: guests\.0\.modul: unknown key \(did you mean "module"\?\)/m);
  assert.match(r.stderr, /^config: guests\.0\.module: required/m);
  assert.match(r.stderr, /^config: guests\.0\.vifs\.1\.mtu: must be <= 9000 \(.*bad\.yaml:8\)$/m);
  assert.equal(r.stdout, '');
  // --check validates the same way
  assert.equal((await runCli(['run', '--config', bad, '--check'])).code, 2);
  // and a usage error is 2 as well
  assert.equal((await runCli(['run'])).code, 2);
});

test('svnic run --json runs the example until the guests exit and prints the counters', LIMIT, async () => {
  const r = await runCli(['run', '--config', 'examples/svnic.yaml', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /running dev0/);
  const out = JSON.parse(r.stdout) as { reason: string; vifs: { name: string; counters: { tx_frames: number; rx_frames: number } }[]; guests: { state: string }[] };
  assert.equal(out.reason, 'guests-exited');
  assert.deepEqual(out.vifs.map((v) => [v.name, v.counters.tx_frames, v.counters.rx_frames]), [['a-eth0', 1, 3], ['b-eth0', 1, 3], ['c-eth0', 1, 3]]);
  assert.deepEqual(out.guests.map((g) => g.state), ['done', 'done', 'done']);
});

test('Ctrl-C (SIGINT) stops svnic run cleanly and prints the final counters table', LIMIT, async () => {
  let sent = false;
  const r = await runCli(['run', '--config', foreverConfig(tmp())], (stderr, child) => {
    if (!sent && /svnic: running/.test(stderr)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  assert.ok(sent, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /SIGINT: stopping/);
  assert.match(r.stderr, /stopped \(on a signal\)/);
  assert.match(r.stdout, /^VIF\s+GUEST\s+DEVICE\s+MAC\s+SEG\s+TX_FRAMES\s+TX_BYTES\s+RX_FRAMES\s+RX_BYTES\s+DROPS$/m);
  assert.match(r.stdout, /^a-eth0\s+a\s+dev0\s/m);
  assert.match(r.stdout, /^b-eth0\s+b\s+dev0\s/m);
  assert.match(r.stdout, /^dev0\s+echo\s/m);
  assert.match(r.stdout, /guests: a stopped, b stopped/);
});
