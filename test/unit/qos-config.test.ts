/**
 * QoS in the run config (docs/config.md, docs/qos.md): the block is parsed and strict, and
 * guarantees above a device's capacity are refused at load time with the VIFs named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, validateConfig } from '../../src/config/schema.js';
import { parseConfigText } from '../../src/config/load.js';

const YAML = `
device:
  qos: { capacityBitsPerSec: 1e9, priorityShare: 0.4 }
guests:
  - name: g
    module: ./m.js
    vifs:
      - name: fast
        qos: { weight: 4, priority: 2, guaranteedBitsPerSec: 300e6 }
      - name: capped
        qos:
          guestTx: { bitsPerSec: 100e6, burstBytes: 64000 }
          guestRx: { framesPerSec: 10000 }
`;

test('a QoS block on the device and on VIFs is parsed and passed through', () => {
  const c = validateConfig(parseConfigText(YAML).data);
  assert.deepEqual(c.devices[0]!.qos, { capacityBitsPerSec: 1e9, priorityShare: 0.4 });
  const [fast, capped] = c.guests[0]!.vifs;
  assert.deepEqual(fast!.qos, { weight: 4, priority: 2, guaranteedBitsPerSec: 300e6 });
  assert.deepEqual(capped!.qos, { guestTx: { bitsPerSec: 100e6, burstBytes: 64000 }, guestRx: { framesPerSec: 10000 } });
});

function issuesOf(data: unknown): { path: string; message: string }[] {
  try {
    validateConfig(data);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.issues;
  }
  assert.fail('accepted');
}

test('unknown QoS keys and out-of-range values are rejected with their path', () => {
  const i = issuesOf({ guests: [{ name: 'g', module: 'm', vifs: [{ qos: { wieght: 2, priority: 9, guestTx: { bps: 1 } } }] }], device: { qos: { priorityShare: 0 } } });
  const paths = i.map((x) => x.path);
  assert.ok(paths.some((p) => p.startsWith('guests.0.vifs.0.qos')), paths.join(' '));
  assert.ok(paths.includes('guests.0.vifs.0.qos.priority'), paths.join(' '));
  assert.ok(paths.some((p) => p.startsWith('guests.0.vifs.0.qos.guestTx')), paths.join(' '));
  assert.ok(paths.includes('device.qos.priorityShare'), paths.join(' '));
});

test('guarantees above the capacity, or without one, are refused naming the VIFs', () => {
  const over = issuesOf({ device: { qos: { capacityBitsPerSec: 100e6 } }, guests: [{ name: 'g', module: 'm', vifs: [
    { name: 'a', qos: { guaranteedBitsPerSec: 60e6 } }, { name: 'b', qos: { guaranteedBitsPerSec: 50e6 } }] }] });
  assert.equal(over.length, 1);
  assert.equal(over[0]!.path, 'device.qos.capacityBitsPerSec');
  assert.match(over[0]!.message, /"a".*"b".*110000000/);
  const none = issuesOf({ guests: [{ name: 'g', module: 'm', vifs: [{ name: 'a', qos: { guaranteedBitsPerSec: 1 } }] }] });
  assert.equal(none[0]!.path, 'device.qos.capacityBitsPerSec');
  assert.match(none[0]!.message, /required.*"a"/);
});

test('daemon reload: a QoS change (or its removal) changes the running VIF in place', async () => {
  const { planChanges } = await import('../../src/daemon/plan.js');
  const { VIF_FIELDS, vifCreateOptions } = await import('../../src/daemon/registry.js');
  const cfg = (qos?: object) => validateConfig({ device: { name: 'd', qos: { capacityBitsPerSec: 1e9 } }, guests: [{ name: 'g', module: 'g.js', vifs: [{ name: 'v', mac: '02:00:00:00:00:01', ...(qos ? { qos } : {}) }] }] });
  const before = cfg({ weight: 2 });
  const vc = before.guests[0]!.vifs[0]!;
  assert.deepEqual(vifCreateOptions(vc).qos, { weight: 2 });
  const running = {
    devices: new Map(before.devices.map((d) => [d.name, d])),
    guests: new Map(before.guests.map((g) => [g.name, g])),
    vifs: new Map([['v', { cfg: vc, guest: 'g', vif: { queueSize: vc.queueSize, bufferMtu: vc.mtu } as never }]]),
  };
  for (const to of [cfg({ weight: 3, guestTx: { bitsPerSec: 1e8 } }), cfg()]) {
    const p = planChanges(running, to);
    assert.deepEqual(p.steps.map((s) => s.op), ['change-vif']);
    assert.deepEqual((p.steps[0] as { fields: string[] }).fields, ['qos']);
  }
  // the change goes through Device.setVif with the whole new setting ({} when removed)
  const calls: unknown[] = [];
  const dev = { setVif: async (id: string, s: unknown) => void calls.push([id, s]) };
  await VIF_FIELDS.find((f) => f.key === 'qos')!.apply!(dev as never, { id: 'v' } as never, cfg().guests[0]!.vifs[0]!);
  assert.deepEqual(calls, [['v', { qos: {} }]]);
});
