/** `vms:` in the run config: shape, defaults and cross-checks shared with guest VIFs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig, ConfigError } from '../../src/config/schema.js';

test('a VM guest gets a VIF checked like any other, with defaults', () => {
  const c = validateConfig({ vms: [{ name: 'vm1', socket: '/tmp/x.sock', vif: { mac: '52:54:00:00:00:01' }, boot: { ip: '10.0.0.1/24' } }] });
  const g = c.guests.find((x) => x.name === 'vm1')!;
  assert.deepEqual(g.vm, { socket: '/tmp/x.sock', mode: 'server', offloads: false, boot: { ip: '10.0.0.1/24', cmd: 'sleep 1000000', memMb: 256 } });
  assert.equal(g.vifs[0]!.name, 'vm1-eth0');
  assert.equal(g.vifs[0]!.device, 'dev0');
  assert.equal(g.vifs[0]!.mtu, 1500);
});

test('VM VIFs share MAC and name uniqueness with guest VIFs; bad keys are reported with their path', () => {
  const bad = () => validateConfig({
    guests: [{ name: 'g', module: 'x.js', vifs: [{ name: 'eth', mac: '52:54:00:00:00:01' }] }],
    vms: [{ name: 'g', socket: '/tmp/x.sock', vif: { name: 'eth', mac: '52:54:00:00:00:01' } }],
  });
  assert.throws(bad, (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    const m = (e as Error).message;
    assert.match(m, /vms\.0\.name: duplicate guest name/);
    assert.match(m, /vms\.0\.vif\.name: duplicate VIF name/);
    assert.match(m, /vms\.0\.vif\.mac: duplicate MAC/);
    return true;
  });
  assert.throws(() => validateConfig({ vms: [{ name: 'v', socket: 's', vif: {}, boot: { ip: '10.0.0.1' } }] }), /vms\.0\.boot\.ip/);
  assert.throws(() => validateConfig({ vms: [{ name: 'v', socket: 's', vif: {}, qemu: 'x' }] }), /vms\.0/);
});
