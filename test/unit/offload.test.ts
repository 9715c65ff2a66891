/**
 * Offloads in the shared device code (virtio 1.2, 5.1.6.2): a transmit header may ask for a
 * partial checksum or GSO only as negotiated and only inside the frame; checksum completion
 * produces the RFC 768/793 sum; passing a header on reproduces it in the receiver's buffer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtioNetDevice, TX_DROPPED, RX_OK, NO_OFFLOADS } from '../../src/device/virtio-net-device.js';
import { SabGuestMemory } from '../../src/virtio/guest-memory.js';
import { DriverQueue } from '../../src/virtio/driver-queue.js';
import { VC } from '../../src/layout/counters.js';
import { NET_HDR_BYTES, NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4, VIRTQ_DESC_F_WRITE } from '../../src/virtio/constants.js';
import { completeChecksum } from '../../src/device/offload.js';

const RXQ = { desc: 0x0, avail: 0x100, used: 0x200, size: 8 };
const TXQ = { desc: 0x400, avail: 0x500, used: 0x600, size: 8 };
const BUF = 0x1000;
const ALL = { csum: true, hostTso4: true, hostTso6: true, guestCsum: true, guestTso4: true, guestTso6: true };

/** An IPv4/UDP frame (payload "svnic!") with its UDP checksum field seeded as a driver would. */
function udpFrame(): Uint8Array {
  const f = new Uint8Array(14 + 20 + 8 + 6);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00], 0);
  f.set([0x45, 0, 0, 34, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], 14);
  f.set([0x30, 0x39, 0x00, 0x07, 0, 14, 0, 0], 34);
  f.set([...'svnic!'].map((c) => c.charCodeAt(0)), 42);
  // pseudo-header sum (not complemented) in the checksum field, as Linux leaves it for CHECKSUM_PARTIAL
  let s = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + 14;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  f[40] = s >> 8;
  f[41] = s & 0xff;
  return f;
}

function fullUdpSum(f: Uint8Array): number {
  let s = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + 14;
  for (let i = 34; i < 48; i += 2) s += (f[i]! << 8) | f[i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s; // 0xffff when the checksum is right
}

function setup(offloads = NO_OFFLOADS) {
  const sab = new SharedArrayBuffer(0x30000);
  const mem = new SabGuestMemory(sab, 0);
  const c = new Float64Array(64);
  const dev = new VirtioNetDevice(mem, RXQ, TXQ, false, { mtu: 1500, linkUp: true }, c, 0, true);
  dev.offloads = offloads;
  const tx = new DriverQueue(sab, TXQ, false);
  const rx = new DriverQueue(sab, RXQ, false);
  const u8 = new Uint8Array(sab);
  const staging = new Uint8Array(0x12000);
  const staging32 = new Int32Array(staging.buffer);
  let d = 0;
  const send = (hdr: number[], frame: Uint8Array) => {
    const at = BUF + d * 0x800;
    u8.fill(0, at, at + NET_HDR_BYTES);
    u8.set(hdr, at);
    u8.set(frame, at + NET_HDR_BYTES);
    tx.setDesc(d, at, NET_HDR_BYTES + frame.length, 0, 0);
    tx.add(d);
    tx.publish();
    d++;
    return dev.fromGuest(staging, staging32);
  };
  return { dev, c, u8, rx, send, staging, staging32 };
}

// header bytes: flags, gso_type, hdr_len(2), gso_size(2), csum_start(2), csum_offset(2)
const csumHdr = (start: number, offset: number) => [NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0, 0, start & 0xff, start >> 8, offset & 0xff, offset >> 8];

test('without negotiated offloads, NEEDS_CSUM and GSO headers are refused (tx_bad_header)', () => {
  const { c, send } = setup();
  assert.equal(send(csumHdr(34, 6), udpFrame()), TX_DROPPED);
  assert.equal(send([NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4, 54, 0, 0xa8, 5, 34, 0, 16, 0], udpFrame()), TX_DROPPED);
  assert.equal(c[VC.tx_bad_header], 2);
});

test('with offloads, a checksum position outside the frame or GSO without NEEDS_CSUM/size is refused', () => {
  const { c, send } = setup(ALL);
  const f = udpFrame();
  assert.equal(send(csumHdr(34, 6), f), f.length, 'a good partial checksum header passes');
  assert.equal(send(csumHdr(40, 8), f), TX_DROPPED); // 40 + 8 + 2 > 48
  assert.equal(send([0, NET_HDR_GSO_TCPV4, 54, 0, 0xa8, 5, 0, 0, 0, 0], f), TX_DROPPED); // GSO without NEEDS_CSUM
  assert.equal(send([NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4, 54, 0, 0, 0, 34, 0, 16, 0], f), TX_DROPPED); // gso_size 0
  assert.equal(send([NET_HDR_F_NEEDS_CSUM, 3, 54, 0, 0xa8, 5, 34, 0, 16, 0], f), TX_DROPPED); // UDP GSO: not offered
  assert.equal(c[VC.tx_bad_header], 4);
});

test('a non-GSO frame longer than the MTU is still oversize when TSO is negotiated', () => {
  const { c, send } = setup(ALL);
  const big = new Uint8Array(1600);
  big.set(udpFrame());
  assert.equal(send([0, 0, 0, 0, 0, 0, 0, 0, 0, 0], big), TX_DROPPED);
  assert.equal(c[VC.tx_oversize], 1);
});

test('completeChecksum stores the RFC 768 sum and clears NEEDS_CSUM', () => {
  const b = new Uint8Array(NET_HDR_BYTES + 48);
  b.set(csumHdr(34, 6), 0);
  b.set(udpFrame(), NET_HDR_BYTES);
  completeChecksum(b, 48);
  assert.equal(b[0]! & NET_HDR_F_NEEDS_CSUM, 0);
  assert.equal(fullUdpSum(b.subarray(NET_HDR_BYTES)), 0xffff);
});

test('toGuestOffloaded passes the sender header on; the next plain frame gets a clean header', () => {
  const { dev, u8, rx, staging, staging32 } = setup(ALL);
  for (let i = 0; i < 2; i++) rx.setDesc(i, 0x20000 + i * 0x800, 0x800, VIRTQ_DESC_F_WRITE, 0), rx.add(i);
  rx.publish();
  const hdr = csumHdr(34, 6);
  staging.set(hdr, 0);
  staging.set(udpFrame(), NET_HDR_BYTES);
  assert.equal(dev.toGuestOffloaded(staging, staging32, NET_HDR_BYTES, 48), RX_OK);
  assert.deepEqual([...u8.slice(0x20000, 0x20000 + 10)], hdr);
  assert.equal(u8[0x20000 + 10], 1, 'num_buffers');
  assert.equal(dev.toGuest(staging, staging32, NET_HDR_BYTES, 48), RX_OK);
  assert.deepEqual([...u8.slice(0x20800, 0x20800 + 10)], new Array(10).fill(0));
});
