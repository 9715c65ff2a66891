/**
 * VXLAN without sockets: the RFC 7348 header both ways, the checks on received packets, the flow
 * hash behind the UDP source port, and the VTEP table's flood lists, learning and ageing under a
 * fake clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseVxlan, writeVxlanHeader, flowHash, outerBytes, PARSE_SHORT, PARSE_BAD_FLAGS, PARSE_INNER_SHORT, VXLAN_HEADER,
} from '../../src/uplink/vxlan-codec.js';
import { VtepTable, LEARN_NEW, LEARN_MOVED, LEARN_REFRESHED, LEARN_NONE, LEARN_FULL } from '../../src/uplink/vxlan-fdb.js';
import { vxlanSettings } from '../../src/uplink/vxlan.js';
import { parseMac } from '../../src/device/mac-table.js';

test('header: I flag, 24-bit VNI, reserved bits zero; parse reads it back', () => {
  const b = new Uint8Array(8 + 60).fill(0xee);
  writeVxlanHeader(b, 0, 0xabcdef);
  assert.deepEqual([...b.subarray(0, 8)], [0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0]);
  assert.equal(parseVxlan(b, b.length), 0xabcdef);
});

test('parse: short, flags without I, too-short inner frame; reserved bits ignored on receipt', () => {
  const b = new Uint8Array(8 + 14);
  writeVxlanHeader(b, 0, 42);
  assert.equal(parseVxlan(b, 7), PARSE_SHORT);
  assert.equal(parseVxlan(b, VXLAN_HEADER + 13), PARSE_INNER_SHORT);
  b[0] = 0xf7; // every flag but I
  assert.equal(parseVxlan(b, b.length), PARSE_BAD_FLAGS);
  b[0] = 0xff;
  b[1] = b[2] = b[3] = b[7] = 0xff; // RFC 7348, 5: reserved fields "ignored on receipt"
  assert.equal(parseVxlan(b, b.length), 42);
});

test('flow hash: same flow same port, different flows spread; short frames are safe', () => {
  const frame = (sport: number) => {
    const f = new Uint8Array(60);
    f.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0, 0x45], 0);
    f[23] = 17;
    f.set([10, 0, 0, 1, 10, 0, 0, 2], 26);
    f[34] = sport >> 8;
    f[35] = sport & 0xff;
    return f;
  };
  assert.equal(flowHash(frame(1000), 0, 60), flowHash(frame(1000), 0, 60));
  const ports = new Set(Array.from({ length: 64 }, (_, i) => flowHash(frame(1000 + i), 0, 60) % 4));
  assert.equal(ports.size, 4, 'UDP source ports of 64 flows cover all 4 sockets');
  const frag = frame(1000);
  frag[20] = 0x20; // MF: ports are not read from fragments
  assert.equal(flowHash(frag, 0, 60), flowHash(Object.assign(frame(2000), { 20: 0x20 }), 0, 60));
  flowHash(new Uint8Array(3), 0, 3); // no throw on a runt
  assert.equal(outerBytes(1450, false), 1486);
  assert.equal(outerBytes(1450, true), 1506);
});

test('VTEP table: floods to static remotes; learns, moves, refreshes, ages; never learns multicast', () => {
  const t = new VtepTable(300_000, 2);
  t.addVni(42, ['192.0.2.2', '192.0.2.3']);
  assert.deepEqual(t.floodList(42), ['192.0.2.2', '192.0.2.3']);
  assert.deepEqual(t.floodList(43), []);
  const a = parseMac('02:00:00:00:00:0a')!;
  const b = parseMac('02:00:00:00:00:0b')!;
  const c = parseMac('02:00:00:00:00:0c')!;
  assert.equal(t.lookup(42, a, 0, 0), null);
  assert.equal(t.learn(42, a, 0, '192.0.2.2', 0), LEARN_NEW);
  assert.equal(t.lookup(42, a, 0, 1), '192.0.2.2');
  assert.equal(t.learn(42, a, 0, '192.0.2.2', 10), LEARN_REFRESHED);
  assert.equal(t.learn(42, a, 0, '192.0.2.3', 20), LEARN_MOVED);
  assert.equal(t.lookup(42, a, 0, 21), '192.0.2.3');
  assert.equal(t.learn(42, parseMac('01:00:5e:00:00:01')!, 0, '192.0.2.9', 0), LEARN_NONE);
  assert.equal(t.learn(99, b, 0, '192.0.2.9', 0), LEARN_NONE, 'unknown VNI');
  assert.equal(t.learn(42, b, 0, '192.0.2.2', 0), LEARN_NEW);
  assert.equal(t.learn(42, c, 0, '192.0.2.2', 0), LEARN_FULL, 'bounded per VNI');
  assert.equal(t.lookup(42, a, 0, 20 + 300_001), null, 'expired on lookup');
  assert.equal(t.age(20 + 300_001), 2);
  assert.deepEqual(t.entries(0), []);
});

test('settings: defaults, and options that would break the tunnel are refused with a reason', () => {
  const s = vxlanSettings({ vnis: [{ vni: 42, remotes: ['192.0.2.2'] }] });
  assert.equal(s.port, 4789);
  assert.equal(s.dstPort, 4789);
  assert.equal(s.pathMtu, 1500);
  assert.equal(s.vnis[0]!.segment, 0);
  const bad: [object, RegExp][] = [
    [{ vnis: [] }, /at least one VNI/],
    [{ vnis: [{ vni: 1 << 24 }] }, /vni must be/],
    [{ vnis: [{ vni: 1 }, { vni: 1, segment: 1 }] }, /listed twice/],
    [{ vnis: [{ vni: 1 }, { vni: 2 }] }, /segment 0 is mapped to two VNIs/],
    [{ vnis: [{ vni: 1, remotes: ['::1'] }] }, /IPv4 address/],
    [{ local: 'example.com', vnis: [{ vni: 1 }] }, /local must be/],
    [{ pathMtu: 80, vnis: [{ vni: 1 }] }, /pathMtu/],
    [{ port: 0, vnis: [{ vni: 1 }] }, /port must be/],
  ];
  for (const [o, re] of bad) assert.throws(() => vxlanSettings(o as never), (e: Error & { code?: string }) => e.code === 'BAD_OPTION' && re.test(e.message), String(re));
  assert.equal(vxlanSettings({ local: '::1', vnis: [{ vni: 1, remotes: ['::2'] }] }).ipv6, true);
});
