/**
 * VIRTIO_NET_F_MRG_RXBUF in the shared device code (virtio 1.2, 5.1.6.4.2): a frame larger than
 * one receive buffer spans several chains, num_buffers says how many; running out part way gives
 * the chains back; a bad buffer completes every chain taken with length 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtioNetDevice, RX_OK, RX_DROPPED } from '../../src/device/virtio-net-device.js';
import { SabGuestMemory } from '../../src/virtio/guest-memory.js';
import { DriverQueue } from '../../src/virtio/driver-queue.js';
import { VC } from '../../src/layout/counters.js';
import { NET_HDR_BYTES, VIRTQ_DESC_F_WRITE } from '../../src/virtio/constants.js';

const RXQ = { desc: 0x0, avail: 0x100, used: 0x200, size: 8 };
const TXQ = { desc: 0x400, avail: 0x500, used: 0x600, size: 8 };
const BUF = 0x1000;

function setup() {
  const sab = new SharedArrayBuffer(0x10000);
  const mem = new SabGuestMemory(sab, 0);
  const c = new Float64Array(64);
  const dev = new VirtioNetDevice(mem, RXQ, TXQ, false, { mtu: 1500, linkUp: true }, c, 0, true);
  const drv = new DriverQueue(sab, RXQ, false);
  const u8 = new Uint8Array(sab);
  let next = 0;
  const post = (n: number, size = 512, addr?: number) => {
    for (let i = 0; i < n; i++) {
      const d = next++ % 8;
      drv.setDesc(d, addr ?? BUF + d * 1024, size, VIRTQ_DESC_F_WRITE, 0);
      drv.add(d);
    }
    drv.publish();
  };
  const src = new Uint8Array(2048);
  const src32 = new Int32Array(src.buffer);
  for (let i = 0; i < src.length; i++) src[i] = (i * 7) & 0xff;
  const used = () => {
    dev.toGuestQ.publishUsed();
    const out: [number, number][] = [];
    while (drv.nextUsed()) out.push([drv.usedId, drv.usedLen]);
    return out;
  };
  return { dev, c, u8, post, src, src32, used };
}

test('a frame larger than one buffer spans chains; num_buffers and the bytes are right', () => {
  const { dev, u8, post, src, src32, used } = setup();
  post(4);
  assert.equal(dev.toGuest(src, src32, 0, 1400), RX_OK);
  const u = used();
  assert.deepEqual(u, [[0, 512], [1, 512], [2, NET_HDR_BYTES + 1400 - 1024]]);
  assert.equal(u8[BUF + 10]! | (u8[BUF + 11]! << 8), 3, 'num_buffers');
  const got = [...u8.slice(BUF + NET_HDR_BYTES, BUF + 512), ...u8.slice(BUF + 1024, BUF + 1024 + 512), ...u8.slice(BUF + 2048, BUF + 2048 + 388)];
  assert.deepEqual(got, [...src.slice(0, 1400)]);
  assert.equal(dev.toGuest(src, src32, 0, 60), RX_OK);
  assert.deepEqual(used(), [[3, 72]]);
  assert.equal(u8[BUF + 3 * 1024 + 10], 1);
});

test('running out of buffers part way gives the chains back and counts rx_no_buffer', () => {
  const { dev, c, post, src, src32, used } = setup();
  post(2);
  assert.equal(dev.toGuest(src, src32, 0, 1400), RX_DROPPED);
  assert.equal(c[VC.rx_no_buffer], 1);
  assert.deepEqual(used(), []);
  assert.equal(dev.toGuestQ.lastAvail, 0);
  post(1);
  assert.equal(dev.toGuest(src, src32, 0, 1400), RX_OK);
  assert.equal(used().length, 3);
});

test('a bad buffer in the middle completes every chain taken with length 0', () => {
  const { dev, c, post, src, src32, used } = setup();
  post(1);
  post(1, 512, 0xfff0); // runs past the end of guest memory
  post(1);
  assert.equal(dev.toGuest(src, src32, 0, 1400), RX_DROPPED);
  assert.equal(c[VC.rx_bad_addr], 1);
  assert.deepEqual(used(), [[0, 0], [1, 0]]);
});
