/** The pcap writer's bytes, checked field by field against the libpcap file format. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PcapWriter, ipv4Checksum } from '../../src/capture/pcap.js';
import { tempDir } from '../helpers/tmp.js';

test('pcap: global header, records with timestamps and lengths, snaplen truncation', () => {
  const f = join(tempDir('sv4-pcap-'), 'x.pcap');
  const w = PcapWriter.open(f, 100);
  const frame = Uint8Array.from({ length: 60 }, (_, i) => i);
  w.write(frame, 0, 60, 1_700_000_000_123.456);
  w.write(new Uint8Array(150).fill(7), 0, 150, 1_700_000_001_000);
  w.close();
  const b = readFileSync(f);
  assert.equal(b.readUInt32LE(0), 0xa1b2c3d4);
  assert.equal(b.readUInt16LE(4), 2);
  assert.equal(b.readUInt16LE(6), 4);
  assert.equal(b.readUInt32LE(16), 100);
  assert.equal(b.readUInt32LE(20), 1, 'LINKTYPE_ETHERNET');
  assert.equal(b.readUInt32LE(24), 1_700_000_000);
  assert.equal(b.readUInt32LE(28), 123_456);
  assert.equal(b.readUInt32LE(32), 60);
  assert.equal(b.readUInt32LE(36), 60);
  assert.deepEqual([...b.subarray(40, 100)], [...frame]);
  assert.equal(b.readUInt32LE(100 + 8), 100, 'incl_len cut to snaplen');
  assert.equal(b.readUInt32LE(100 + 12), 150, 'orig_len kept');
  assert.equal(b.length, 100 + 16 + 100);
});

test('pcap: a UDP datagram is written inside rebuilt Ethernet/IPv4/UDP headers', () => {
  const f = join(tempDir('sv4-pcap-'), 'u.pcap');
  const w = PcapWriter.open(f);
  w.writeUdp('192.0.2.1', 50000, '192.0.2.2', 4789, new Uint8Array([8, 0, 0, 0, 0, 0, 42, 0]), 0, 8, 0);
  w.close();
  const b = readFileSync(f).subarray(24 + 16);
  assert.equal(b.readUInt16BE(12), 0x0800);
  assert.equal(ipv4Checksum(b, 14, 20), 0, 'IPv4 header checksum verifies');
  assert.equal(b.readUInt16BE(16), 20 + 8 + 8);
  assert.deepEqual([...b.subarray(26, 34)], [192, 0, 2, 1, 192, 0, 2, 2]);
  assert.equal(b.readUInt16BE(34), 50000);
  assert.equal(b.readUInt16BE(36), 4789);
  assert.equal(b[34 + 8 + 6], 42);
});
