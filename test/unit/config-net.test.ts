/** Run-config entries of issue 4: vxlan and tap uplinks, capture options, the svnic:echo built-in. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig, ConfigError } from '../../src/config/schema.js';
import { resolveModule } from '../../src/config/load.js';

const issues = (data: unknown): string[] => {
  try {
    validateConfig(data);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
};

test('vxlan uplink: defaults filled; bad values reported with their path', () => {
  const c = validateConfig({ device: { uplink: { kind: 'vxlan', vnis: [{ vni: 42, remotes: ['192.0.2.2'] }], capture: { path: 'x.pcap' } } } });
  const u = c.devices[0]!.uplink as any;
  assert.equal(u.port, 4789);
  assert.equal(u.dstPort, 4789);
  assert.equal(u.local, '0.0.0.0');
  assert.equal(u.vnis[0].segment, 0);
  assert.equal(u.capture.mode, 'inner');
  const bad = issues({ device: { uplink: { kind: 'vxlan', vnis: [{ vni: 1 << 24, remotes: ['host.example'] }], port: 0, pathMtu: 50, bogus: 1 } } });
  for (const re of [/vnis\.0\.vni/, /vnis\.0\.remotes\.0: must be an IPv4 or IPv6 address/, /uplink\.port/, /uplink\.pathMtu/, /bogus/]) {
    assert.ok(bad.some((i) => re.test(i)), `${re} in ${bad.join('\n')}`);
  }
  assert.ok(issues({ device: { uplink: { kind: 'vxlan', vnis: [] } } }).some((i) => /vnis/.test(i)));
});

test('tap uplink and VIF capture options', () => {
  const c = validateConfig({ device: { uplink: { kind: 'tap', ifname: 'svtap0' } }, guests: [{ name: 'g', module: 'svnic:echo', vifs: [{ capture: 'g.pcap' }] }] });
  assert.equal((c.devices[0]!.uplink as any).segment, 0);
  assert.equal(c.guests[0]!.vifs[0]!.capture, 'g.pcap');
  assert.ok(issues({ device: { uplink: { kind: 'tap', ifname: 'a name that is far too long' } } }).some((i) => /ifname/.test(i)));
  assert.ok(issues({ device: { uplink: { kind: 'tap', capture: { path: 'x', mode: 'outer' } } } }).some((i) => /mode/.test(i)));
});

test('built-in guest programs: svnic:echo resolves; an unknown one says which exist', () => {
  assert.match(resolveModule('svnic:echo', '/nowhere'), /\/guest\/programs\/echo\.js$/);
  assert.throws(() => resolveModule('svnic:nope', '/'), /built-ins: svnic:echo, svnic:demo/);
});
