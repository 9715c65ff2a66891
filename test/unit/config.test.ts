import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError, validateConfig, type Config, type ConfigIssue } from '../../src/config/schema.js';
import { compiledPathFor, loadConfig, parseConfigText, resolveModule } from '../../src/config/load.js';
import { SvnicError } from '../../src/hypervisor/errors.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

/** The issues of an invalid config (fails the test if it is valid). */
function issues(data: unknown): ConfigIssue[] {
  try {
    validateConfig(data);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    assert.ok(e instanceof SvnicError);
    assert.equal(e.code, 'CONFIG_INVALID');
    // every issue is one `config: path: message` line of the error's message
    for (const i of e.issues) assert.ok(e.message.split('\n').includes(`config: ${i.path || '(top level)'}: ${i.message}`), e.message);
    return e.issues;
  }
  assert.fail('the config was accepted');
}

function hasIssue(list: ConfigIssue[], path: string, re: RegExp): void {
  assert.ok(list.some((i) => i.path === path && re.test(i.message)), `no issue at ${path} matching ${re}; got:\n${list.map((i) => `${i.path}: ${i.message}`).join('\n')}`);
}

const guest = (name: string, vifs: unknown[] = [{}], extra: object = {}) => ({ name, module: './g.js', vifs, ...extra });

test('a minimal config parses, with the defaults filled in', () => {
  const c: Config = validateConfig({ guests: [guest('a'), guest('b', [{}, { mtu: 9000 }])] });
  assert.equal(c.devices.length, 1);
  const d = c.devices[0]!;
  assert.deepEqual(
    { name: d.name, engines: d.engines, maxVifs: d.maxVifs, interruptMode: d.interruptMode, spinUs: d.spinUs, sweepMs: d.sweepMs, batch: d.batch, ringSlots: d.ringSlots, uplink: d.uplink },
    { name: 'dev0', engines: 1, maxVifs: 1024, interruptMode: 'direct', spinUs: 100, sweepMs: 100, batch: 32, ringSlots: 512, uplink: { kind: 'null' } },
  );
  assert.deepEqual(c.guests.map((g) => g.name), ['a', 'b']);
  assert.deepEqual(c.guests[0]!.args, {});
  assert.equal(c.guests[0]!.moduleUrl, './g.js'); // no resolver: as written
  const v = c.guests[1]!.vifs[1]!;
  assert.equal(v.name, 'b-eth1');
  assert.equal(v.device, 'dev0');
  assert.equal(v.mtu, 9000);
  assert.deepEqual(
    { queueSize: v.queueSize, segment: v.segment, linkUp: v.linkUp, promiscuous: v.promiscuous, multicast: v.multicast, coalesce: v.coalesce, engine: v.engine },
    { queueSize: 256, segment: 0, linkUp: true, promiscuous: false, multicast: [], coalesce: { frames: 1, usecs: 0 }, engine: undefined },
  );
  // default MACs: distinct, unicast, locally administered
  const macs = c.guests.flatMap((g) => g.vifs.map((x) => x.mac));
  assert.equal(new Set(macs).size, 3);
  for (const m of macs) assert.match(m, /^02:53:00:00:[0-9a-f]{2}:[0-9a-f]{2}$/);
});

test('an empty mapping is a device and no guests', () => {
  const c = validateConfig({});
  assert.equal(c.devices.length, 1);
  assert.deepEqual(c.guests, []);
});

test('every option is accepted and passed through', () => {
  const c = validateConfig({
    device: { name: 'nic', engines: 4, maxVifs: 8, interruptMode: 'hypervisor', spinUs: 0, sweepMs: 5, batch: 8, ringSlots: 64, routerSpinUs: 10, uplink: { kind: 'echo' } },
    guests: [guest('g', [{ name: 'x', mac: '02:AA:00:00:00:01', mtu: 68, queueSize: 2, segment: 16383, linkUp: false, promiscuous: true, multicast: ['01:00:5E:00:00:01'], coalesce: { frames: 8, usecs: 50 }, engine: 3 }], { args: { n: 1, s: 'x', deep: { a: [1] } } })],
  });
  assert.deepEqual(c.devices[0]!.uplink, { kind: 'echo' });
  assert.equal(c.devices[0]!.interruptMode, 'hypervisor');
  const v = c.guests[0]!.vifs[0]!;
  assert.equal(v.mac, '02:aa:00:00:00:01'); // lower-cased
  assert.deepEqual(v.multicast, ['01:00:5e:00:00:01']);
  assert.equal(v.device, 'nic');
  assert.equal(v.engine, 3);
  assert.deepEqual(v.coalesce, { frames: 8, usecs: 50 });
  assert.deepEqual(c.guests[0]!.args, { n: 1, s: 'x', deep: { a: [1] } });
});

test('uplink shorthands: a bare kind, and YAML `kind: null`', () => {
  assert.deepEqual(validateConfig({ device: { uplink: 'echo' } }).devices[0]!.uplink, { kind: 'echo' });
  assert.deepEqual(validateConfig({ device: { uplink: null } }).devices[0]!.uplink, { kind: 'null' });
  const { data } = parseConfigText('device:\n  uplink:\n    kind: null\n');
  assert.deepEqual(validateConfig(data).devices[0]!.uplink, { kind: 'null' });
});

test('unknown keys are rejected with their path, at every depth', () => {
  const list = issues({
    colour: 'red',
    device: { engine: 2, uplink: { kind: 'echo', spin: 1 } },
    guests: [
      guest('a', [{ mtu: 1500, coalesce: { frames: 1, usec: 5 } }, {}, { mut: 1500 }]),
      { name: 'b', modul: './g.js' },
    ],
  });
  hasIssue(list, 'colour', /^unknown key/);
  hasIssue(list, 'device.engine', /^unknown key \(did you mean "engines"\?\)/);
  hasIssue(list, 'device.uplink.spin', /^unknown key/);
  hasIssue(list, 'guests.0.vifs.0.coalesce.usec', /^unknown key \(did you mean "usecs"\?\)/);
  hasIssue(list, 'guests.0.vifs.2.mut', /^unknown key \(did you mean "mtu"\?\)/);
  hasIssue(list, 'guests.1.modul', /^unknown key \(did you mean "module"\?\)/);
  hasIssue(list, 'guests.1.module', /^required$/);
  // an unknown key far from any known one lists what is allowed
  hasIssue(list, 'colour', /allowed here: device, devices, guests/);
});

test('bad values are rejected with their path and a reason', () => {
  const list = issues({
    devices: [{ engines: 0, maxVifs: 2000, interruptMode: 'polling', ringSlots: 100, uplink: { kind: 'token-ring' } }],
    guests: [
      guest('a', [
        { mtu: 67 },
        { mtu: 9001 },
        { mtu: '1500' },
        { mac: '01:00:00:00:00:01' },
        { mac: '00:00:00:00:00:00' },
        { mac: 'not-a-mac' },
        { queueSize: 384 },
        { segment: 16384 },
        { multicast: ['02:00:00:00:00:01'] },
        { coalesce: { frames: 0, usecs: -1 } },
        { linkUp: 'yes' },
      ]),
      { name: 'bad name!', module: '', args: [1], vifs: {} },
    ],
  });
  hasIssue(list, 'devices.0.engines', /^must be >= 1$/);
  hasIssue(list, 'devices.0.maxVifs', /^must be <= 1024$/);
  hasIssue(list, 'devices.0.interruptMode', /"direct", "hypervisor"/);
  hasIssue(list, 'devices.0.ringSlots', /power of two/);
  hasIssue(list, 'devices.0.uplink.kind', /must be one of "null", "echo", "wire", "vxlan", "tap", got "token-ring"/);
  hasIssue(list, 'guests.0.vifs.0.mtu', /^must be >= 68$/);
  hasIssue(list, 'guests.0.vifs.1.mtu', /^must be <= 9000$/);
  hasIssue(list, 'guests.0.vifs.2.mtu', /^must be a number, got "1500"$/);
  hasIssue(list, 'guests.0.vifs.3.mac', /unicast/);
  hasIssue(list, 'guests.0.vifs.4.mac', /all-zero/);
  hasIssue(list, 'guests.0.vifs.5.mac', /MAC address/);
  hasIssue(list, 'guests.0.vifs.6.queueSize', /power of two/);
  hasIssue(list, 'guests.0.vifs.7.segment', /^must be <= 16383$/);
  hasIssue(list, 'guests.0.vifs.8.multicast.0', /multicast MAC/);
  hasIssue(list, 'guests.0.vifs.9.coalesce.frames', /^must be >= 1$/);
  hasIssue(list, 'guests.0.vifs.9.coalesce.usecs', /^must be >= 0$/);
  hasIssue(list, 'guests.0.vifs.10.linkUp', /^must be true or false, got "yes"$/);
  hasIssue(list, 'guests.1.name', /letters, digits/);
  hasIssue(list, 'guests.1.module', /must not be empty/);
  hasIssue(list, 'guests.1.args', /must be a mapping, got a list/);
  hasIssue(list, 'guests.1.vifs', /must be a list, got a mapping/);
});

test('the whole file must be a mapping', () => {
  hasIssue(issues([1, 2]), '', /must be a mapping, got a list/);
  hasIssue(issues({ guests: 'a' }), 'guests', /must be a list/);
});

test('duplicate guest, device and VIF names are rejected with the path of the second', () => {
  const list = issues({
    devices: [{ name: 'd' }, { name: 'd' }],
    guests: [
      guest('a', [{ name: 'x', device: 'd' }]),
      guest('b', [{ name: 'x', device: 'd' }]),
      guest('a', [{ device: 'd' }]),
    ],
  });
  hasIssue(list, 'devices.1.name', /duplicate device name "d" \(devices\.0 has it too\)/);
  hasIssue(list, 'guests.2.name', /duplicate guest name "a" \(guests\.0\.name has it too\)/);
  hasIssue(list, 'guests.1.vifs.0.name', /duplicate VIF name "x" \(guests\.0\.vifs\.0 has it too\)/);
});

test('a VIF name that clashes with a default VIF name is reported', () => {
  hasIssue(issues({ guests: [guest('a', [{}]), guest('b', [{ name: 'a-eth0' }])] }), 'guests.1.vifs.0.name', /duplicate VIF name "a-eth0"/);
});

test('duplicate MACs are rejected within a segment, and allowed across segments and devices', () => {
  const mac = '02:00:00:00:00:01';
  const list = issues({ guests: [guest('a', [{ mac }]), guest('b', [{ mac: mac.toUpperCase() }])] });
  hasIssue(list, 'guests.1.vifs.0.mac', /duplicate MAC 02:00:00:00:00:01 in segment 0 \(guests\.0\.vifs\.0\.mac has it too\)/);
  validateConfig({ guests: [guest('a', [{ mac }]), guest('b', [{ mac, segment: 1 }])] });
  validateConfig({ devices: [{ name: 'x' }, { name: 'y' }], guests: [guest('a', [{ mac, device: 'x' }]), guest('b', [{ mac, device: 'y' }])] });
  // ...but not across devices joined by a wire: one L2 network
  const wired = issues({
    devices: [{ name: 'x', uplink: { kind: 'wire', peer: 'y' } }, { name: 'y' }],
    guests: [guest('a', [{ mac, device: 'x' }]), guest('b', [{ mac, device: 'y' }])],
  });
  hasIssue(wired, 'guests.1.vifs.0.mac', /duplicate MAC/);
});

test('default MACs avoid the MACs given explicitly', () => {
  const c = validateConfig({ guests: [guest('a', [{}, {}]), guest('b', [{ mac: '02:53:00:00:00:00' }])] });
  const macs = c.guests.flatMap((g) => g.vifs.map((v) => v.mac));
  assert.equal(new Set(macs).size, 3);
});

test('device references, engine pins and maxVifs are checked against the devices', () => {
  const two = [{ name: 'x', engines: 2 }, { name: 'y', maxVifs: 1 }];
  const list = issues({
    devices: two,
    guests: [guest('a', [{}, { device: 'z' }, { device: 'x', engine: 2 }, { device: 'y' }, { device: 'y' }])],
  });
  hasIssue(list, 'guests.0.vifs.0.device', /required when there is more than one device/);
  hasIssue(list, 'guests.0.vifs.1.device', /no device named "z"/);
  hasIssue(list, 'guests.0.vifs.2.engine', /engine must be in 0\.\.1/);
  hasIssue(list, 'devices.1.maxVifs', /2 VIFs are configured on device "y", more than maxVifs \(1\)/);
  hasIssue(issues({ device: {}, devices: [{}] }), 'devices', /either `device`.*or `devices`/);
});

test('wires: peers must exist, differ, and have no other uplink', () => {
  hasIssue(issues({ devices: [{ name: 'x', uplink: { kind: 'wire', peer: 'q' } }] }), 'devices.0.uplink.peer', /no device named "q"/);
  hasIssue(issues({ devices: [{ name: 'x', uplink: { kind: 'wire', peer: 'x' } }] }), 'devices.0.uplink.peer', /two different devices/);
  hasIssue(issues({ devices: [{ name: 'x', uplink: { kind: 'wire', peer: 'y' } }, { name: 'y', uplink: 'echo' }] }), 'devices.0.uplink.peer', /already has a echo uplink/);
  hasIssue(issues({ devices: [{ name: 'x', uplink: { kind: 'wire', peer: 'z' } }, { name: 'y', uplink: { kind: 'wire', peer: 'z' } }, { name: 'z' }] }), 'devices.1.uplink.peer', /already wired to "x"/);
  // declared on one end, or on both naming each other; the other end gets the wire back
  const one = validateConfig({ devices: [{ name: 'x', uplink: { kind: 'wire', peer: 'y' } }, { name: 'y' }] });
  assert.deepEqual(one.devices[1]!.uplink, { kind: 'wire', peer: 'x' });
  validateConfig({ devices: [{ name: 'x', uplink: { kind: 'wire', peer: 'y' } }, { name: 'y', uplink: { kind: 'wire', peer: 'x' } }] });
});

test('YAML: syntax errors and duplicate keys are reported with their line', () => {
  assert.throws(() => parseConfigText('guests:\n  - name: a\n    name: b\n', 'f.yaml'), (e: ConfigError) => {
    assert.equal(e.code, 'CONFIG_INVALID');
    assert.match(e.message, /^config: \(top level\): f\.yaml:3:\d+: .*unique/m);
    return true;
  });
  assert.throws(() => parseConfigText('guests: [\n', 'f.yaml'), /config: \(top level\): f\.yaml:\d+:\d+: /);
});

test('loadConfig reads YAML and JSON, resolves modules relative to the file, and gives lines', () => {
  const dir = tempDir('svnic-config-');
  writeFileSync(join(dir, 'g.js'), 'export default async () => 0;\n');
  writeFileSync(join(dir, 'ok.yaml'), 'guests:\n  - name: a\n    module: ./g.js\n');
  writeFileSync(join(dir, 'ok.json'), JSON.stringify({ guests: [{ name: 'a', module: join(dir, 'g.js') }] }));
  for (const f of ['ok.yaml', 'ok.json']) {
    const c = loadConfig(join(dir, f));
    assert.equal(c.guests[0]!.moduleUrl, pathToFileURL(join(dir, 'g.js')).href);
  }
  writeFileSync(join(dir, 'bad.yaml'), [
    'device:',
    '  engines: 1',
    'guests:',
    '  - name: a',
    '    module: ./missing.js',
    '    vifs:',
    '      - mtu: 1500',
    '      - mtu: 20000',
    '        colour: red',
    '',
  ].join('\n'));
  assert.throws(() => loadConfig(join(dir, 'bad.yaml')), (e: ConfigError) => {
    const lines = e.message.split('\n');
    assert.ok(lines.some((l) => /^config: guests\.0\.vifs\.1\.mtu: must be <= 9000 \(.*bad\.yaml:8\)$/.test(l)), e.message);
    assert.ok(lines.some((l) => /^config: guests\.0\.vifs\.1\.colour: unknown key.*bad\.yaml:9\)$/.test(l)), e.message);
    return true;
  });
  // module existence is checked once the shape is right
  writeFileSync(join(dir, 'nomod.yaml'), 'guests:\n  - name: a\n    module: ./missing.js\n');
  assert.throws(() => loadConfig(join(dir, 'nomod.yaml')), /config: guests\.0\.module: no such file: .*missing\.js \(.*nomod\.yaml:3\)/);
  writeFileSync(join(dir, 'empty.yaml'), '# nothing\n');
  assert.throws(() => loadConfig(join(dir, 'empty.yaml')), /empty/);
  assert.throws(() => loadConfig(join(dir, 'nope.yaml')), /cannot read/);
});

test('a .ts module maps to its compiled .js through the nearest tsconfig.json', () => {
  assert.equal(compiledPathFor(join(ROOT, 'examples/hello-guest.ts')), join(ROOT, 'dist/examples/hello-guest.js'));
  assert.equal(resolveModule('./hello-guest.ts', join(ROOT, 'examples')), pathToFileURL(join(ROOT, 'dist/examples/hello-guest.js')).href);
  assert.throws(() => resolveModule('./nope.ts', join(ROOT, 'examples')), /nope\.ts is TypeScript; it maps to .*dist\/examples\/nope\.js, which does not exist/);
  // outside any project: the .js next to it
  const dir = tempDir('svnic-ts-');
  assert.equal(compiledPathFor(join(dir, 'g.ts')), join(dir, 'g.js'));
  assert.equal(compiledPathFor(join(dir, 'g.mts')), join(dir, 'g.mjs'));
});

test('the example config is valid', () => {
  const c = loadConfig(join(ROOT, 'examples/svnic.yaml'));
  assert.deepEqual(c.guests.map((g) => g.name), ['a', 'b', 'c']);
  assert.equal(c.devices[0]!.uplink.kind, 'echo');
});
