/** The daemon's pure parts: plan (desired vs running), document pinning, rates, progress output. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig, type Config } from '../../src/config/schema.js';
import { planChanges, describeChange, type RunningView } from '../../src/daemon/plan.js';
import { pinDocument, withResolvedMacs } from '../../src/daemon/state.js';
import { ratesBetween, type Sample } from '../../src/daemon/sampler.js';
import { ApiError } from '../../src/daemon/errors.js';
import { progress } from '../../src/cli/progress.js';
import { VIF_COUNTERS, ENGINE_COUNTERS } from '../../src/layout/counters.js';
import type { Vif } from '../../src/hypervisor/device.js';

const base = () => ({
  device: { name: 'dev0' },
  guests: [
    { name: 'a', module: 'a.js', vifs: [{ name: 'a0', mac: '02:00:00:00:00:01' }, { name: 'a1', mac: '02:00:00:00:00:02' }] },
    { name: 'b', module: 'b.js', args: { x: 1 }, vifs: [{ name: 'b0', mac: '02:00:00:00:00:03' }] },
  ],
});

/** A running view as if `cfg` had been applied (VIFs with buffers for their MTU). */
function runningFrom(cfg: Config): RunningView {
  const vifs = new Map<string, { cfg: Config['guests'][number]['vifs'][number]; guest: string; vif: Vif }>();
  for (const g of cfg.guests) {
    for (const v of g.vifs) vifs.set(v.name, { cfg: v, guest: g.name, vif: { queueSize: v.queueSize, bufferMtu: v.mtu } as unknown as Vif });
  }
  return {
    devices: new Map(cfg.devices.map((d) => [d.name, d])),
    guests: new Map(cfg.guests.map((g) => [g.name, g])),
    vifs,
  };
}

const edit = (f: (d: ReturnType<typeof base>) => void) => {
  const d = base();
  f(d);
  return validateConfig(d);
};

test('plan: from nothing, devices, uplinks, guests, VIFs in file order, then start messages', () => {
  const p = planChanges({ devices: new Map(), guests: new Map(), vifs: new Map() }, validateConfig(base()));
  assert.deepEqual(p.steps.map((s) => s.op), ['add-device', 'attach-uplink', 'start-guest', 'start-guest', 'add-vif', 'add-vif', 'add-vif', 'start-message', 'start-message']);
  assert.deepEqual(p.steps.filter((s) => s.op === 'add-vif').map((s) => (s as { vif: { name: string } }).vif.name), ['a0', 'a1', 'b0']);
  assert.deepEqual(p.changes.map((c) => `${c.kind} ${c.name} ${c.action}`), ['device dev0 added', 'guest a added', 'guest b added', 'vif a0 added', 'vif a1 added', 'vif b0 added']);
});

test('plan: the same config plans nothing', () => {
  const c = validateConfig(base());
  assert.deepEqual(planChanges(runningFrom(c), validateConfig(base())), { steps: [], changes: [] });
});

test('plan: MAC, MTU (within the buffers), link and filters change in place', () => {
  const running = runningFrom(edit((d) => ((d.guests[0]!.vifs[0] as Record<string, unknown>).mtu = 9000)));
  const p = planChanges(running, edit((d) => Object.assign(d.guests[0]!.vifs[0]!, { mtu: 1400, mac: '02:00:00:00:00:09', linkUp: false, multicast: ['01:00:5e:00:00:01'] })));
  assert.deepEqual(p.steps.map((s) => s.op), ['change-vif']);
  const s = p.steps[0] as { vif: string; fields: string[] };
  assert.equal(s.vif, 'a0');
  assert.deepEqual(s.fields, ['linkUp', 'mac', 'mtu', 'multicast']);
  assert.equal(p.changes[0]!.action, 'changed');
  assert.deepEqual(p.changes[0]!.fields!.mtu, { from: 9000, to: 1400 });
  assert.match(describeChange(p.changes[0]!), /vif a0 changed \(.*mtu 9000 -> 1400/);
});

test('plan: an MTU above what the buffers hold, a segment or a queue size replaces the VIF', () => {
  const running = runningFrom(validateConfig(base()));
  for (const [field, value] of [['mtu', 9000], ['segment', 2], ['queueSize', 512]] as const) {
    const p = planChanges(running, edit((d) => ((d.guests[0]!.vifs[0] as Record<string, unknown>)[field] = value)));
    assert.deepEqual(p.steps.map((s) => `${s.op}`), ['remove-vif', 'add-vif'], field);
    assert.equal(p.changes[0]!.action, 'replaced');
    assert.match(p.changes[0]!.reason!, new RegExp(field));
  }
});

test('plan: removing a VIF removes only it; adding one adds only it', () => {
  const running = runningFrom(validateConfig(base()));
  const rm = planChanges(running, edit((d) => d.guests[0]!.vifs.splice(0, 1)));
  assert.deepEqual(rm.steps, [{ op: 'remove-vif', vif: 'a0' }]);
  const add = planChanges(running, edit((d) => d.guests[1]!.vifs.push({ name: 'b1', mac: '02:00:00:00:00:04' })));
  assert.deepEqual(add.steps.map((s) => s.op), ['add-vif']);
  assert.deepEqual(add.changes, [{ kind: 'vif', name: 'b1', action: 'added' }]);
});

test('plan: new guest args restart the guest and replace its VIFs; a removed guest loses its VIFs first', () => {
  const running = runningFrom(validateConfig(base()));
  const p = planChanges(running, edit((d) => (d.guests[1]!.args = { x: 2 })));
  assert.deepEqual(p.steps.map((s) => s.op), ['remove-vif', 'stop-guest', 'start-guest', 'add-vif', 'start-message']);
  assert.deepEqual(p.changes.map((c) => `${c.kind} ${c.name} ${c.action}`), ['guest b restarted', 'vif b0 replaced']);
  const gone = planChanges(running, edit((d) => d.guests.splice(1, 1)));
  assert.deepEqual(gone.steps, [{ op: 'remove-vif', vif: 'b0' }, { op: 'stop-guest', guest: 'b' }]);
});

test('plan: a change to a running device is refused with its config path, and nothing is planned', () => {
  const running = runningFrom(validateConfig(base()));
  assert.throws(() => planChanges(running, edit((d) => Object.assign(d.device, { engines: 2, uplink: 'echo' }))), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, 'NEEDS_RESTART');
    assert.equal(e.status, 409);
    assert.deepEqual((e.details.issues as { path: string }[]).map((i) => i.path), ['device.engines', 'device.uplink']);
    return true;
  });
});

test('plan: a VIF moved to another guest is replaced', () => {
  const running = runningFrom(validateConfig(base()));
  const p = planChanges(running, edit((d) => d.guests[1]!.vifs.push(d.guests[0]!.vifs.pop()!)));
  assert.deepEqual(p.steps.map((s) => s.op), ['remove-vif', 'add-vif']);
  assert.match(p.changes[0]!.reason!, /moves from guest a to b/);
});

test('pinDocument: names become explicit, remembered MACs are kept unless the file names them elsewhere', () => {
  const doc = { guests: [{ name: 'g', module: 'm', vifs: [{}, { mac: '02:00:00:00:00:07' }, {}] }] };
  const macs = new Map([['g-eth0', '02:00:00:00:00:05'], ['g-eth2', '02:00:00:00:00:07']]);
  const pinned = pinDocument(doc, macs) as typeof doc & { guests: { vifs: { name?: string; mac?: string }[] }[] };
  assert.deepEqual(pinned.guests[0]!.vifs, [
    { name: 'g-eth0', mac: '02:00:00:00:00:05' },
    { name: 'g-eth1', mac: '02:00:00:00:00:07' },
    { name: 'g-eth2' }, // its remembered MAC is now another VIF's explicit one
  ]);
  assert.deepEqual(doc.guests[0]!.vifs[0], {}, 'the input is not modified');
  const cfg = validateConfig(pinned);
  const resolved = withResolvedMacs(pinned, cfg) as typeof pinned;
  assert.match(resolved.guests[0]!.vifs[2]!.mac!, /^02:53:00:00:/);
  assert.equal(pinDocument('not a config', macs), 'not a config');
});

const zeros = <K extends string>(names: readonly K[]) => Object.fromEntries(names.map((n) => [n, 0])) as Record<K, number>;
function sample(t: number, tx: number, busy: number, idle: number): Sample {
  const c = zeros(VIF_COUNTERS);
  c.tx_frames = tx;
  c.tx_bytes = tx * 100;
  c.rx_no_buffer = tx / 10;
  const e = zeros(ENGINE_COUNTERS);
  e.busy_ns = busy;
  e.idle_ns = idle;
  return {
    t,
    vifs: new Map([['v', { device: 'd', guest: 'g', state: 'ready', counters: c, drops: c.rx_no_buffer }]]),
    engines: new Map([['d/0', { device: 'd', engine: 0, counters: e }]]),
  };
}

test('rates: per second over the interval; a counter that went down (a replaced VIF) gives 0, not a negative rate', () => {
  const r = ratesBetween(sample(1000, 100, 0, 0), sample(3000, 500, 1e9, 3e9));
  assert.equal(r.intervalS, 2);
  assert.equal(r.vifs[0]!.txPps, 200);
  assert.equal(r.vifs[0]!.txBps, 200 * 100 * 8);
  assert.equal(r.vifs[0]!.dropsPs, 20);
  assert.equal(r.engines[0]!.busy, 0.25);
  const reset = ratesBetween(sample(1000, 500, 0, 0), sample(2000, 10, 0, 0));
  assert.equal(reset.vifs[0]!.txPps, 0);
  assert.equal(reset.vifs[0]!.dropsPs, 0);
  assert.equal(ratesBetween(undefined, sample(1000, 5, 0, 0)).vifs[0]!.txPps, 0);
});

test('progress: a line per step for few steps, about every 5 % for many; done and fail lines', () => {
  const lines: string[] = [];
  const stream = { write: (s: string) => lines.push(s), isTTY: false } as unknown as NodeJS.WritableStream;
  const p = progress('apply', 3, { stream });
  p.step('one');
  p.step('two');
  p.fail('boom');
  assert.deepEqual(lines, ['svnic: apply [1/3] one\n', 'svnic: apply [2/3] two\n', 'svnic: apply: failed at step 2/3: boom\n']);
  lines.length = 0;
  const q = progress('create', 1000, { stream, prefix: '' });
  for (let i = 0; i < 1000; i++) q.step(`vif${i}`);
  q.done();
  assert.equal(lines.length, 21 + 1, 'step 1, then one line per 5 % (20), then done');
  assert.equal(lines[lines.length - 1], 'create: done\n');
  const tty: string[] = [];
  const t = progress('x', 2, { stream: { write: (s: string) => tty.push(s), isTTY: true } as unknown as NodeJS.WritableStream });
  t.step('a');
  t.done();
  assert.match(tty[0]!, /^\r\x1b\[K\[1\/2\] x: a$/);
});

test('plan: a MAC another running VIF of the segment still has (a swap) replaces instead of changing in place', () => {
  const running = runningFrom(validateConfig(base()));
  const swap = planChanges(running, edit((d) => {
    d.guests[0]!.vifs[0]!.mac = '02:00:00:00:00:02';
    d.guests[0]!.vifs[1]!.mac = '02:00:00:00:00:01';
  }));
  assert.deepEqual(swap.steps.map((s) => s.op), ['remove-vif', 'remove-vif', 'add-vif', 'add-vif']);
  assert.match(swap.changes[0]!.reason!, /still VIF a1's/);
  // a MAC nobody has changes in place
  const fresh = planChanges(running, edit((d) => (d.guests[0]!.vifs[0]!.mac = '02:00:00:00:00:77')));
  assert.deepEqual(fresh.steps.map((s) => s.op), ['change-vif']);
});

test('the change queue runs changes one at a time, in order, and refuses more than MAX_QUEUED waiting (BUSY)', async () => {
  const { Controller, MAX_QUEUED } = await import('../../src/daemon/controller.js');
  const ctl = new Controller();
  const order: number[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const running: Promise<void>[] = [];
  for (let i = 0; i < MAX_QUEUED; i++) {
    running.push(ctl.serial(async () => {
      if (i === 0) await gate;
      order.push(i);
    }));
  }
  await assert.rejects(ctl.serial(async () => {}), (e: unknown) => e instanceof ApiError && e.code === 'BUSY' && e.status === 503);
  release();
  await Promise.all(running);
  assert.deepEqual(order, Array.from({ length: MAX_QUEUED }, (_, i) => i));
  await ctl.serial(async () => {}); // room again
});
