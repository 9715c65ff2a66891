/**
 * vhost-user message framing (QEMU docs/interop/vhost-user.rst, "Message Specification").
 *
 * ```
 *  0        4        8        12                      12 + size
 *  +--------+--------+--------+-----------------------+
 *  | request| flags  | size   | payload (size bytes)  |   all little-endian
 *  +--------+--------+--------+-----------------------+
 *  flags: bits 0-1 version (must be 1), bit 2 REPLY (set by the back-end on replies),
 *         bit 3 NEED_REPLY (front-end asks for an ack; only with protocol feature REPLY_ACK)
 * ```
 * File descriptors travel as SCM_RIGHTS ancillary data with the message they belong to.
 * Payload shapes used by a net back-end: u64; vring state {u32 index, u32 num} (8 B); vring
 * address {u32 index, u32 flags, u64 desc, u64 used, u64 avail, u64 log} (40 B); memory table
 * {u32 nregions, u32 padding, nregions x {u64 guest_phys_addr, u64 size, u64 user_addr,
 * u64 mmap_offset}} (8 + 32 n B).
 */

export const HDR_BYTES = 12;
export const VERSION = 0x1;
export const FLAG_VERSION_MASK = 0x3;
export const FLAG_REPLY = 0x4;
export const FLAG_NEED_REPLY = 0x8;
/** Largest payload this back-end accepts: a memory table of MAX_REGIONS is the largest it needs. */
export const MAX_REGIONS = 8;
export const MAX_PAYLOAD = 8 + 32 * MAX_REGIONS;
/** Payload bit of SET_VRING_KICK/CALL/ERR: no file descriptor accompanies the message. */
export const VRING_NOFD_MASK = 0x100;
export const VRING_IDX_MASK = 0xff;

/** Front-end requests (vhost-user.rst, "Front-end message types"). */
export const enum Req {
  GET_FEATURES = 1,
  SET_FEATURES = 2,
  SET_OWNER = 3,
  RESET_OWNER = 4,
  SET_MEM_TABLE = 5,
  SET_LOG_BASE = 6,
  SET_LOG_FD = 7,
  SET_VRING_NUM = 8,
  SET_VRING_ADDR = 9,
  SET_VRING_BASE = 10,
  GET_VRING_BASE = 11,
  SET_VRING_KICK = 12,
  SET_VRING_CALL = 13,
  SET_VRING_ERR = 14,
  GET_PROTOCOL_FEATURES = 15,
  SET_PROTOCOL_FEATURES = 16,
  GET_QUEUE_NUM = 17,
  SET_VRING_ENABLE = 18,
  SEND_RARP = 19,
  NET_SET_MTU = 20,
  GET_MAX_MEM_SLOTS = 36,
}

export const REQ_NAMES: Record<number, string> = {
  1: 'GET_FEATURES', 2: 'SET_FEATURES', 3: 'SET_OWNER', 4: 'RESET_OWNER', 5: 'SET_MEM_TABLE', 6: 'SET_LOG_BASE',
  7: 'SET_LOG_FD', 8: 'SET_VRING_NUM', 9: 'SET_VRING_ADDR', 10: 'SET_VRING_BASE', 11: 'GET_VRING_BASE',
  12: 'SET_VRING_KICK', 13: 'SET_VRING_CALL', 14: 'SET_VRING_ERR', 15: 'GET_PROTOCOL_FEATURES',
  16: 'SET_PROTOCOL_FEATURES', 17: 'GET_QUEUE_NUM', 18: 'SET_VRING_ENABLE', 19: 'SEND_RARP', 20: 'NET_SET_MTU',
  36: 'GET_MAX_MEM_SLOTS',
};

/** VHOST_USER_F_PROTOCOL_FEATURES: a virtio feature bit number reused by vhost-user (QEMU 7.2 requires it). */
export const F_PROTOCOL_FEATURES = 30;
/** Protocol feature bits (vhost-user.rst, "Protocol features"). */
export const PF_MQ = 0;
export const PF_REPLY_ACK = 3;
export const PF_MTU = 4;

/** Payload shape each known request must have: 'u64', 'state', 'addr', 'mem', 'none'. */
export type Shape = 'u64' | 'state' | 'addr' | 'mem' | 'none';
export const SHAPE: Record<number, Shape> = {
  [Req.GET_FEATURES]: 'none', [Req.SET_FEATURES]: 'u64', [Req.SET_OWNER]: 'none', [Req.RESET_OWNER]: 'none',
  [Req.SET_MEM_TABLE]: 'mem', [Req.SET_VRING_NUM]: 'state', [Req.SET_VRING_ADDR]: 'addr',
  [Req.SET_VRING_BASE]: 'state', [Req.GET_VRING_BASE]: 'state', [Req.SET_VRING_KICK]: 'u64',
  [Req.SET_VRING_CALL]: 'u64', [Req.SET_VRING_ERR]: 'u64', [Req.GET_PROTOCOL_FEATURES]: 'none',
  [Req.SET_PROTOCOL_FEATURES]: 'u64', [Req.GET_QUEUE_NUM]: 'none', [Req.SET_VRING_ENABLE]: 'state',
  [Req.SEND_RARP]: 'u64', [Req.NET_SET_MTU]: 'u64', [Req.GET_MAX_MEM_SLOTS]: 'none',
};

/** Is `size` the right payload size for `shape`? (A memory table is checked against its count.) */
export function sizeOk(shape: Shape, size: number, payload: DataView): boolean {
  switch (shape) {
    case 'none': return size === 0;
    case 'u64': return size === 8;
    case 'state': return size === 8;
    case 'addr': return size === 40;
    case 'mem': {
      if (size < 8) return false;
      const n = payload.getUint32(0, true);
      return n >= 1 && n <= MAX_REGIONS && size === 8 + 32 * n;
    }
  }
}

/** A u64 from the payload as a JS number, or -1 when it does not fit in 2^53 (refused by callers). */
export function u64(dv: DataView, off: number): number {
  const v = dv.getBigUint64(off, true);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(v);
}

export interface Message {
  request: number;
  flags: number;
  payload: DataView;
  fds: number[];
}

/** Encode a reply: header with REPLY set, then `payload` bytes. */
export function encodeReply(request: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HDR_BYTES + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, request, true);
  dv.setUint32(4, VERSION | FLAG_REPLY, true);
  dv.setUint32(8, payload.length, true);
  out.set(payload, HDR_BYTES);
  return out;
}

export function u64Payload(lo: number, hi = 0): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, lo >>> 0, true);
  dv.setUint32(4, hi >>> 0, true);
  return b;
}

export function statePayload(index: number, num: number): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, index, true);
  dv.setUint32(4, num, true);
  return b;
}

/** Encode a request (used by the scripted front-end in tests). */
export function encodeRequest(request: number, payload: Uint8Array, needReply = false): Uint8Array {
  const out = new Uint8Array(HDR_BYTES + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, request, true);
  dv.setUint32(4, VERSION | (needReply ? FLAG_NEED_REPLY : 0), true);
  dv.setUint32(8, payload.length, true);
  out.set(payload, HDR_BYTES);
  return out;
}
