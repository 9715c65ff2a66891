/**
 * Property tests with random hostile input (fast-check): the guest stack never throws and accounts
 * for every frame (delivered or counted once), whatever bytes arrive; the VXLAN parser's verdict
 * always follows RFC 7348's rules for any datagram.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NetStack } from '../../src/guest/net/stack.js';
import { inputBalance } from '../../src/guest/net/stats.js';
import { checksum } from '../../src/guest/net/checksum.js';
import { parseVxlan, PARSE_SHORT, PARSE_BAD_FLAGS, PARSE_INNER_SHORT } from '../../src/uplink/vxlan-codec.js';

const ME = [2, 0, 0, 0, 0, 2];

/** A valid frame to start from: ARP request, ICMP echo, or UDP to port 7, all for us. */
function seed(kind: number): Uint8Array {
  const f = new Uint8Array(kind === 0 ? 60 : 14 + 20 + 8 + 32);
  f.set(kind === 0 ? [255, 255, 255, 255, 255, 255] : ME, 0);
  f.set([2, 0, 0, 0, 0, 1], 6);
  if (kind === 0) {
    f.set([8, 6, 0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2], 12);
    return f;
  }
  f.set([8, 0, 0x45, 0, 0, 60, 0, 0, 0, 0, 64, kind === 1 ? 1 : 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], 12);
  const c = checksum(f, 14, 20);
  f[24] = c >> 8;
  f[25] = c & 0xff;
  if (kind === 1) f[34] = 8;
  else f.set([0x13, 0x88, 0, 7, 0, 40, 0, 0], 34); // UDP checksum 0: none
  if (kind === 1) {
    const ic = checksum(f, 34, 40);
    f[36] = ic >> 8;
    f[37] = ic & 0xff;
  }
  return f;
}

test('guest stack: any mutation or truncation of a valid frame is delivered or counted once, never thrown', () => {
  const sent: number[] = [];
  const stack = new NetStack({ mac: Uint8Array.from(ME), mtu: 1500, transmit: (_f, len) => (sent.push(len), true) }, { ip: '10.0.0.2/24', clock: () => 0 });
  stack.createSocket().bind(7);
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 2 }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.oneof(fc.constant(-1), fc.nat()), // -1: keep the whole frame
    (kind, flips, cut) => {
      const f = seed(kind);
      for (const [at, v] of flips) f[at % f.length] = v;
      const len = cut < 0 ? f.length : cut % (f.length + 1);
      stack.input(f, 0, len);
      assert.equal(inputBalance(stack.stats), 0);
    },
  ), { numRuns: 3000 });
  assert.ok(stack.stats.frames_in === 3000);
  assert.ok(stack.stats.icmp_echo_answered > 0 && stack.stats.udp_delivered > 0 && stack.stats.arp_in > 0, 'unmutated seeds still get through');
});

test('VXLAN parser: the verdict for any datagram follows RFC 7348', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
    const r = parseVxlan(b, b.length);
    if (b.length < 8) assert.equal(r, PARSE_SHORT);
    else if ((b[0]! & 0x08) === 0) assert.equal(r, PARSE_BAD_FLAGS);
    else if (b.length < 22) assert.equal(r, PARSE_INNER_SHORT);
    else assert.equal(r, (b[4]! << 16) | (b[5]! << 8) | b[6]!);
  }), { numRuns: 2000 });
});
