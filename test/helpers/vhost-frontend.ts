/**
 * A scripted vhost-user front-end for tests: plays QEMU's part over a real unix socket with real
 * fds (memfd guest RAM, eventfds for kicks and calls), and a virtio driver on the mapped RAM
 * (DriverQueue). It sends whatever it is told, well-formed or not; the tests assert what the
 * back-end made of it.
 *
 * Guest RAM: one 2 MiB memfd exposed as two regions, so addresses are translated per region:
 *   region 0: GPA 0x0         .. 1 MiB, memfd offset 0      (rings live here)
 *   region 1: GPA 0x100000000 .. 1 MiB, memfd offset 1 MiB  (packet buffers: the high u32 is used)
 * User addresses (what SET_VRING_ADDR carries) are GPA-unrelated: UVA_BASE + memfd offset.
 */
import { native } from '../../src/native/index.js';
import { encodeRequest, HDR_BYTES, Req, F_PROTOCOL_FEATURES, PF_REPLY_ACK, VRING_NOFD_MASK } from '../../src/vhost-user/protocol.js';
import { DriverQueue } from '../../src/virtio/driver-queue.js';
import { F_EVENT_IDX, F_VERSION_1, NET_HDR_BYTES, VIRTQ_DESC_F_WRITE } from '../../src/virtio/constants.js';

export const MIB = 1 << 20;
export const HIGH_GPA = 0x100000000;
export const UVA_BASE = 0x7f1200000000;
const Q = 64; // ring size
/** Ring placement (region 0, GPA = memfd offset). */
export const RINGS = [
  { desc: 0x1000, avail: 0x2000, used: 0x3000, size: Q },
  { desc: 0x5000, avail: 0x6000, used: 0x7000, size: Q },
];

export interface Reply { request: number; flags: number; payload: DataView }

export class Frontend {
  readonly fd: number;
  readonly memfd: number;
  readonly ram: SharedArrayBuffer;
  readonly u8: Uint8Array;
  readonly kick = [-1, -1];
  readonly call = [-1, -1];
  toGuest!: DriverQueue;
  fromGuest!: DriverQueue;

  constructor(socket: string) {
    const n = native();
    this.fd = n.unixConnect(socket);
    this.memfd = n.memfdCreate('sv5-test-ram', 2 * MIB);
    this.ram = n.mmapShared(this.memfd, 2 * MIB, 0);
    this.u8 = new Uint8Array(this.ram);
  }

  send(req: number, payload: Uint8Array, fds: number[] = [], needReply = false): number {
    const b = encodeRequest(req, payload, needReply);
    return native().sendMsg(this.fd, b, b.length, fds);
  }

  /** Raw bytes (for malformed headers). */
  sendRaw(bytes: Uint8Array, fds: number[] = []): number {
    return native().sendMsg(this.fd, bytes, bytes.length, fds);
  }

  /** Wait for one reply (the back-end's timer must run: this yields to the event loop). */
  async reply(limitMs = 10_000): Promise<Reply | 'eof'> {
    const n = native();
    const buf = new Uint8Array(HDR_BYTES + 512);
    const fds = new Int32Array(4);
    let have = 0;
    const end = Date.now() + limitMs;
    while (Date.now() < end) {
      const want = have < HDR_BYTES ? HDR_BYTES : HDR_BYTES + new DataView(buf.buffer).getUint32(8, true);
      if (have === want) {
        const dv = new DataView(buf.buffer);
        return { request: dv.getUint32(0, true), flags: dv.getUint32(4, true), payload: new DataView(buf.slice(HDR_BYTES, want).buffer) };
      }
      const r = n.recvMsg(this.fd, buf.subarray(have, want), fds);
      if (typeof r === 'number') {
        if (r !== -n.EAGAIN) return 'eof';
        await new Promise((res) => setTimeout(res, 1));
        continue;
      }
      if (r.bytes === 0) return 'eof';
      have += r.bytes;
    }
    throw new Error('no reply from the back-end');
  }

  async u64Reply(): Promise<bigint> {
    const r = await this.reply();
    if (r === 'eof') throw new Error('back-end closed the connection');
    return r.payload.getBigUint64(0, true);
  }

  static u64(v: bigint | number): Uint8Array {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    return b;
  }

  static state(index: number, num: number): Uint8Array {
    const b = new Uint8Array(8);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, index, true);
    dv.setUint32(4, num, true);
    return b;
  }

  static addr(index: number, desc: number, used: number, avail: number): Uint8Array {
    const b = new Uint8Array(40);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, index, true);
    dv.setBigUint64(8, BigInt(desc), true);
    dv.setBigUint64(16, BigInt(used), true);
    dv.setBigUint64(24, BigInt(avail), true);
    return b;
  }

  /** Memory table payload: the two regions above (UVA shifted by `uvaShift` to look like a remap). */
  static memTable(uvaShift = 0, regions = [[0, MIB, 0], [HIGH_GPA, MIB, MIB]] as [number, number, number][]): Uint8Array {
    const b = new Uint8Array(8 + 32 * regions.length);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, regions.length, true);
    regions.forEach(([gpa, size, off], i) => {
      dv.setBigUint64(8 + 32 * i, BigInt(gpa), true);
      dv.setBigUint64(16 + 32 * i, BigInt(size), true);
      dv.setBigUint64(24 + 32 * i, BigInt(UVA_BASE + uvaShift + off), true);
      dv.setBigUint64(32 + 32 * i, BigInt(off), true);
    });
    return b;
  }

  sendMemTable(uvaShift = 0, needReply = false): void {
    this.send(Req.SET_MEM_TABLE, Frontend.memTable(uvaShift), [this.memfd, this.memfd], needReply);
  }

  /** Per ring: NUM, BASE, ADDR (user addresses), KICK, CALL, as QEMU 7.2 sends them at driver start. */
  sendRing(i: number, base = 0, uvaShift = 0): void {
    const n = native();
    const r = RINGS[i]!;
    this.send(Req.SET_VRING_NUM, Frontend.state(i, r.size));
    this.send(Req.SET_VRING_BASE, Frontend.state(i, base));
    const u = UVA_BASE + uvaShift;
    this.send(Req.SET_VRING_ADDR, Frontend.addr(i, u + r.desc, u + r.used, u + r.avail));
    if (this.kick[i]! < 0) this.kick[i] = n.eventfd(0, true);
    if (this.call[i]! < 0) this.call[i] = n.eventfd(0, true);
    this.send(Req.SET_VRING_KICK, Frontend.u64(i), [this.kick[i]!]);
    this.send(Req.SET_VRING_CALL, Frontend.u64(i), [this.call[i]!]);
  }

  /** The driver side of both rings over the mapped RAM (ring 0 receive, ring 1 transmit). */
  initDriver(eventIdx: boolean): void {
    this.u8.fill(0, 0, 0x8000);
    this.toGuest = new DriverQueue(this.ram, RINGS[0]!, eventIdx);
    this.fromGuest = new DriverQueue(this.ram, RINGS[1]!, eventIdx);
  }

  /** The order QEMU 7.2 uses (MACHINE-NOTES): protocol features first, enable before SET_FEATURES. */
  async handshake72(opts: { eventIdx?: boolean } = {}): Promise<void> {
    const n = native();
    this.send(Req.GET_FEATURES, new Uint8Array(0));
    const offered = await this.u64Reply();
    this.send(Req.SET_OWNER, new Uint8Array(0));
    this.send(Req.GET_FEATURES, new Uint8Array(0));
    await this.u64Reply();
    this.send(Req.GET_PROTOCOL_FEATURES, new Uint8Array(0));
    const pf = await this.u64Reply();
    if ((pf & (1n << BigInt(PF_REPLY_ACK))) === 0n) throw new Error('REPLY_ACK not offered');
    this.send(Req.SET_PROTOCOL_FEATURES, Frontend.u64(1n << BigInt(PF_REPLY_ACK)));
    for (const i of [0, 1]) {
      this.call[i] = n.eventfd(0, true);
      this.send(Req.SET_VRING_CALL, Frontend.u64(i), [this.call[i]!]);
      this.send(Req.SET_VRING_ERR, Frontend.u64(i), [n.eventfd(0, true)]);
    }
    for (const i of [0, 1, 2, 3]) this.send(Req.SET_VRING_ENABLE, Frontend.state(i, 1)); // rings beyond 2 without MQ
    let f = (1n << 32n) | (1n << BigInt(F_PROTOCOL_FEATURES));
    if (opts.eventIdx !== false) f |= 1n << BigInt(F_EVENT_IDX);
    if ((offered & f) !== f) throw new Error('features not offered');
    this.send(Req.SET_FEATURES, Frontend.u64(f));
    this.initDriver(opts.eventIdx !== false);
    this.sendMemTable();
    this.sendRing(0);
    this.sendRing(1);
    // A reply-acked no-op makes the sequence synchronous: everything before it was handled.
    await this.sync();
  }

  /** The order of QEMU before protocol features (2.x): no GET_PROTOCOL_FEATURES, rings enabled by KICK. */
  async handshakeLegacy(): Promise<void> {
    this.send(Req.GET_FEATURES, new Uint8Array(0));
    await this.u64Reply();
    this.send(Req.SET_OWNER, new Uint8Array(0));
    this.send(Req.SET_FEATURES, Frontend.u64(1n << BigInt(F_VERSION_1)));
    this.initDriver(false);
    this.sendMemTable();
    this.sendRing(0);
    this.sendRing(1);
    this.send(Req.GET_FEATURES, new Uint8Array(0)); // something with a reply, to wait on
    await this.u64Reply();
  }

  /** A request with a natural reply: returns once every earlier message was handled. */
  async sync(): Promise<void> {
    this.send(Req.GET_QUEUE_NUM, new Uint8Array(0));
    await this.u64Reply();
  }

  /** Post `count` receive buffers of 2 KiB in region 1 (high GPA). */
  postRx(count: number): void {
    for (let i = 0; i < count; i++) {
      this.toGuest.setDesc(i, HIGH_GPA + 0x10000 + i * 2048, 2048, VIRTQ_DESC_F_WRITE, 0);
      this.toGuest.add(i);
    }
    this.toGuest.publish();
    native().eventfdWrite(this.kick[0]!, 1);
  }

  /** Transmit a frame (virtio header + frame) from a buffer in region 1; `addr` overrides its GPA. */
  transmit(desc: number, frame: Uint8Array, addr?: number): void {
    const off = MIB + 0x40000 + desc * 2048; // memfd offset of the buffer in region 1
    this.u8.fill(0, off, off + NET_HDR_BYTES);
    this.u8.set(frame, off + NET_HDR_BYTES);
    this.fromGuest.setDesc(desc, addr ?? HIGH_GPA + 0x40000 + desc * 2048, NET_HDR_BYTES + frame.length, 0, 0);
    this.fromGuest.add(desc);
    this.fromGuest.publish();
    native().eventfdWrite(this.kick[1]!, 1);
  }

  /** Read a received frame (after the 12-byte header) from used entry data. */
  received(): Uint8Array[] {
    const out: Uint8Array[] = [];
    while (this.toGuest.nextUsed()) {
      const off = MIB + 0x10000 + this.toGuest.usedId * 2048;
      out.push(this.u8.slice(off + NET_HDR_BYTES, off + this.toGuest.usedLen));
    }
    return out;
  }

  close(): void {
    const n = native();
    for (const fd of [this.fd, this.memfd, ...this.kick, ...this.call]) if (fd >= 0) n.close(fd);
  }
}

export function frame(dst: string, src: string, payloadByte: number, len = 60): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst.split(':').map((h) => parseInt(h, 16)), 0);
  f.set(src.split(':').map((h) => parseInt(h, 16)), 6);
  f[12] = 0x88;
  f[13] = 0xb5; // local experimental ethertype
  f.fill(payloadByte, 14);
  return f;
}

export { VRING_NOFD_MASK };
