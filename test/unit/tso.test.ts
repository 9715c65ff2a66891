/** Software TCP/IPv4 segmentation of GSO frames (src/device/tso.ts; RFC 791, RFC 793). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { segmentTcp4 } from '../../src/device/tso.js';
import { NET_HDR_BYTES, NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4 } from '../../src/virtio/constants.js';

function sum16(b: Uint8Array, off: number, len: number, init = 0): number {
  let s = init;
  for (let i = 0; i < len; i += 2) s += (b[off + i]! << 8) | (i + 1 < len ? b[off + i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function gsoFrame(payload: number, mss: number, tcpFlags = 0x18): { buf: Uint8Array; len: number } {
  const len = 14 + 20 + 20 + payload;
  const buf = new Uint8Array(NET_HDR_BYTES + len);
  buf.set([NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4, 54, 0, mss & 0xff, mss >> 8, 34, 0, 16, 0], 0);
  const f = NET_HDR_BYTES;
  buf.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00], f);
  buf.set([0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], f + 14);
  buf.set([0x30, 0x39, 0x14, 0x51, 0xff, 0xff, 0xff, 0x00, 0, 0, 0, 1, 0x50, tcpFlags, 0xff, 0xff, 0xab, 0xcd, 0, 0], f + 34);
  for (let i = 0; i < payload; i++) buf[f + 54 + i] = (i * 13) & 0xff;
  return { buf, len };
}

test('a GSO frame becomes MSS-sized segments with right lengths, ids, seqs, flags and checksums', () => {
  const { buf, len } = gsoFrame(2500, 1000);
  const out = new Uint8Array(NET_HDR_BYTES + 9100);
  const segs: Uint8Array[] = [];
  const n = segmentTcp4(buf, len, out, (segLen) => segs.push(out.slice(NET_HDR_BYTES, NET_HDR_BYTES + segLen)));
  assert.equal(n, 3);
  let seq = 0xffffff00;
  let sent = 0;
  segs.forEach((s, k) => {
    const chunk = [1000, 1000, 500][k]!;
    assert.equal(s.length, 54 + chunk);
    assert.equal((s[16]! << 8) | s[17]!, 40 + chunk, 'IPv4 total length');
    assert.equal((s[18]! << 8) | s[19]!, 0x1234 + k, 'IPv4 identification');
    assert.equal(sum16(s, 14, 20), 0xffff, 'IPv4 header checksum');
    assert.equal(((s[38]! << 24) | (s[39]! << 16) | (s[40]! << 8) | s[41]!) >>> 0, (seq + sent) >>> 0, 'sequence number (wraps)');
    assert.equal(s[47], k === 2 ? 0x18 : 0x10, 'PSH only on the last segment');
    const pseudo = sum16(s, 26, 8, 6 + 20 + chunk);
    assert.equal(sum16(s, 34, 20 + chunk, pseudo), 0xffff, 'TCP checksum');
    for (let i = 0; i < chunk; i += 97) assert.equal(s[54 + i], ((sent + i) * 13) & 0xff);
    sent += chunk;
  });
});

test('frames it cannot segment are refused (0): not IPv4, not TCP, truncated headers', () => {
  const out = new Uint8Array(NET_HDR_BYTES + 9100);
  const { buf, len } = gsoFrame(100, 50);
  const ipv6 = buf.slice();
  ipv6[NET_HDR_BYTES + 13] = 0xdd;
  assert.equal(segmentTcp4(ipv6, len, out, () => assert.fail()), 0);
  const udp = buf.slice();
  udp[NET_HDR_BYTES + 23] = 17;
  assert.equal(segmentTcp4(udp, len, out, () => assert.fail()), 0);
  const badDoff = buf.slice();
  badDoff[NET_HDR_BYTES + 46] = 0xf0; // 60-byte TCP header past the end of a 54-byte frame
  assert.equal(segmentTcp4(badDoff, 54, out, () => assert.fail()), 0);
});
