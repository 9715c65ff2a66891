/**
 * Byte layout of one VIF's SharedArrayBuffer: the only memory a guest is granted for that VIF.
 *
 * ```
 *  VIF SharedArrayBuffer
 *  0x0000 +------------------------------------------------------------+
 *         | header page (HEADER_BYTES = 4096)                          |
 *         |  0x000 magic u32 'SVNC'      0x004 layout version u32      |
 *         |  0x008 queue size u32        0x00C queue count u32 (=2)    |
 *         |  0x010 device features u32x2 (lo, hi)   device writes      |
 *         |  0x018 driver features u32x2 (lo, hi)   guest writes       |
 *         |  0x020 device status u32 (virtio 1.2 2.1) guest writes,    |
 *         |        device ORs NEEDS_RESET                              |
 *         |  0x024 config generation u32              device writes    |
 *         |  0x028 mtu u32   0x02C link status u32    device writes    |
 *         |  0x030 mac[6]                             device writes    |
 *         |  0x038 buffers offset u32  0x03C buffers size u32          |
 *         |  0x040 doorbell bit u32 (index in the engine doorbell page)|
 *         |  0x044 device state u32: 0 reset, 1 live, 2 needs reset   |
 *         |        (device writes; the driver waits for 0 after reset) |
 *         |  0x080 interrupt word i32 (own 64 B line): device adds 1   |
 *         |        and notifies; the guest Atomics.wait()s on it       |
 *  0x1000 +------------------------------------------------------------+ RINGS_OFFSET
 *         | queue 0 = receiveq1 (guestRx): desc | avail | used         |
 *         | queue 1 = transmitq1 (guestTx): desc | avail | used        |
 *         |   desc  16 B x Q  (addr u64, len u32, flags u16, next u16) |
 *         |   avail flags u16, idx u16, ring u16 x Q, used_event u16   |
 *         |   used  flags u16, idx u16, ring {id u32,len u32} x Q,     |
 *         |         avail_event u16          (virtio 1.2 2.7.5-2.7.8)  |
 *         |   each part starts on a 64 B line                          |
 *         +------------------------------------------------------------+ buffers offset
 *         | buffer area: (Q rx + Q tx) buffers of bufferBytes each,    |
 *         | owned and laid out by the guest driver                     |
 *         +------------------------------------------------------------+ byteLength
 * ```
 *
 * A descriptor's "guest physical address" is a byte offset into this buffer. The device accepts
 * buffers only inside [RINGS_OFFSET, byteLength): the header page is never a packet buffer.
 * Nothing in this memory is trusted by the device except as input to be checked: the device keeps
 * its own copy of MAC, MTU, link and negotiated features.
 */

export const VIF_MAGIC = 0x434e5653; // 'SVNC' little-endian
export const VIF_LAYOUT_VERSION = 1;
export const HEADER_BYTES = 4096;
export const RINGS_OFFSET = HEADER_BYTES;

/** Byte offsets inside the header page. */
export const H = {
  MAGIC: 0x000,
  LAYOUT_VERSION: 0x004,
  QUEUE_SIZE: 0x008,
  QUEUE_COUNT: 0x00c,
  DEVICE_FEATURES_LO: 0x010,
  DEVICE_FEATURES_HI: 0x014,
  DRIVER_FEATURES_LO: 0x018,
  DRIVER_FEATURES_HI: 0x01c,
  STATUS: 0x020,
  CONFIG_GENERATION: 0x024,
  MTU: 0x028,
  LINK_STATUS: 0x02c,
  MAC: 0x030,
  BUFFERS_OFFSET: 0x038,
  BUFFERS_SIZE: 0x03c,
  DOORBELL_BIT: 0x040,
  DEVICE_STATE: 0x044,
  IRQ: 0x080,
} as const;

/** Index of a header field in an Int32Array over the VIF buffer. */
export const i32 = (byteOffset: number): number => byteOffset >> 2;

export const QUEUE_GUEST_RX = 0; // virtio-net receiveq1 (virtio 1.2 5.1.2)
export const QUEUE_GUEST_TX = 1; // virtio-net transmitq1
export const QUEUE_COUNT = 2;

const align = (n: number, a: number): number => Math.ceil(n / a) * a;

export interface QueueLayout {
  /** Byte offsets of the three parts, relative to the start of the VIF buffer. */
  desc: number;
  avail: number;
  used: number;
  size: number;
}

export interface VifLayout {
  queueSize: number;
  bufferBytes: number;
  queues: [QueueLayout, QueueLayout];
  buffersOffset: number;
  buffersSize: number;
  byteLength: number;
}

export const descBytes = (q: number): number => 16 * q;
export const availBytes = (q: number): number => 6 + 2 * q;
export const usedBytes = (q: number): number => 6 + 8 * q;

/** Largest frame (without virtio header) a VIF may carry: 14 B Ethernet + 4 B VLAN tag + MTU. */
export const maxFrameBytes = (mtu: number): number => 14 + 4 + mtu;

/** Size of one guest packet buffer for a given MTU: virtio-net header + max frame, 64 B aligned. */
export const bufferBytesFor = (mtu: number): number => align(12 + maxFrameBytes(mtu), 64);

export function vifLayout(queueSize: number, mtu: number): VifLayout {
  let off = RINGS_OFFSET;
  const queues = [] as unknown as [QueueLayout, QueueLayout];
  for (let q = 0; q < QUEUE_COUNT; q++) {
    const desc = off;
    off = align(off + descBytes(queueSize), 64);
    const avail = off;
    off = align(off + availBytes(queueSize), 64);
    const used = off;
    off = align(off + usedBytes(queueSize), 64);
    queues.push({ desc, avail, used, size: queueSize });
  }
  const buffersOffset = align(off, 64);
  const bufferBytes = bufferBytesFor(mtu);
  const buffersSize = 2 * queueSize * bufferBytes;
  return { queueSize, bufferBytes, queues, buffersOffset, buffersSize, byteLength: buffersOffset + buffersSize };
}
