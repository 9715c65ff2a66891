/**
 * One vhost-user connection as a state machine (QEMU docs/interop/vhost-user.rst). It validates
 * every message, keeps the negotiated state, and decides when the device runs: a ring runs once
 * it has a size (SET_VRING_NUM), addresses (SET_VRING_ADDR), a kick (SET_VRING_KICK) and is
 * enabled; the device runs when the memory table is known and both rings of the net device
 * (0 = receiveq, toGuest; 1 = transmitq, fromGuest) run. Order does not matter: QEMU 7.2 sends
 * SET_VRING_ENABLE before SET_FEATURES, older QEMUs enable implicitly; protocol features arrive
 * before SET_FEATURES; SET_MEM_TABLE may come again while running (stop, remap, restart).
 *
 * Errors (never a throw out of `handle`): a malformed message (wrong payload size, wrong number of
 * fds, ring index out of range, addresses outside every region, unknown request) is counted; the
 * front-end gets a failure ack if it asked for one (NEED_REPLY with REPLY_ACK), otherwise the
 * connection is closed. Every fd that arrived and was not kept is closed.
 */
import {
  Req, SHAPE, sizeOk, u64, encodeReply, u64Payload, statePayload, FLAG_NEED_REPLY, FLAG_VERSION_MASK, VERSION,
  F_PROTOCOL_FEATURES, PF_REPLY_ACK, VRING_NOFD_MASK, VRING_IDX_MASK, MAX_REGIONS, type Message,
} from './protocol.js';
import { VhostGuestMemory, regionsValid, PAGE, type MappedRegion, type RegionSpec } from './memory-table.js';
import {
  F_EVENT_IDX, F_MAC, F_MRG_RXBUF, F_STATUS, F_VERSION_1, F_CSUM, F_GUEST_CSUM, F_HOST_TSO4, F_HOST_TSO6, F_GUEST_TSO4,
  F_GUEST_TSO6, hasFeature, type Features,
} from '../virtio/constants.js';
import type { Offloads } from '../device/virtio-net-device.js';
import type { QueueAddresses } from '../virtio/device-queue.js';

/** Virtio features this back-end offers (plus F_PROTOCOL_FEATURES). No INDIRECT_DESC, no offloads. */
export const VHOST_DEVICE_FEATURES = [F_VERSION_1, F_MAC, F_STATUS, F_EVENT_IDX, F_MRG_RXBUF];
/**
 * Offered too when the VIF is configured with offloads: checksum and TCP segmentation offload,
 * passed as is between VM VIFs on one engine that both negotiated them. To anything else the
 * engine completes a partial checksum and segments a TCP/IPv4 GSO frame in software
 * (device/offload.ts, device/tso.ts); a TCP/IPv6 GSO frame that cannot go whole is dropped,
 * counted tx_gso_undeliverable.
 */
export const VHOST_OFFLOAD_FEATURES = [F_CSUM, F_GUEST_CSUM, F_HOST_TSO4, F_HOST_TSO6, F_GUEST_TSO4, F_GUEST_TSO6];
export const VHOST_PROTOCOL_FEATURES = (1 << PF_REPLY_ACK) >>> 0;
const NET_RINGS = 2;

/** What an engine needs to serve a VM's VIF; every field is postable to a worker. */
export interface VmRings {
  regions: { sab: SharedArrayBuffer; gpa: number; size: number; base: number }[];
  /** Ring 0 (receiveq) and ring 1 (transmitq): guest physical ring addresses, size, last_avail. */
  toGuest: QueueAddresses & { base: number };
  fromGuest: QueueAddresses & { base: number };
  eventIdx: boolean;
  mrgRxbuf: boolean;
  offloads: Offloads;
  /** Call eventfds of ring 0 and ring 1 (-1: none; then the ring is never signalled). */
  callFds: [number, number];
}

export interface SessionBackend {
  mmap(fd: number, length: number, offset: number): SharedArrayBuffer;
  close(fd: number): void;
  /** Start serving; kickFds[i] < 0 means no kick fd (the front-end polls). */
  start(r: VmRings, kickFds: [number, number]): Promise<void>;
  /** Stop serving (engine and kick relay); resolves with last_avail of ring 0 and 1. */
  stop(): Promise<[number, number]>;
}

export const SESSION_COUNTERS = [
  'messages', 'replies', 'bad_version', 'bad_size', 'bad_fds', 'bad_ring_index', 'bad_ring_num', 'bad_address',
  'bad_region', 'mmap_failed', 'unknown_request', 'unsupported_features', 'starts', 'stops', 'mem_tables',
] as const;
export type SessionCounter = (typeof SESSION_COUNTERS)[number];

interface Ring {
  num: number;
  desc: number; // user addresses from SET_VRING_ADDR (-1: not set)
  used: number;
  avail: number;
  base: number;
  kick: number; // fd; -1 none; -2 front-end said "no fd" (polling)
  call: number;
  err: number;
  enabled: boolean;
}

export type Outcome = { reply: Uint8Array | null; close: boolean };

const newRing = (): Ring => ({ num: 0, desc: -1, used: -1, avail: -1, base: 0, kick: -1, call: -1, err: -1, enabled: false });

export class VhostUserSession {
  readonly counters: Record<SessionCounter, number> = Object.fromEntries(SESSION_COUNTERS.map((c) => [c, 0])) as Record<SessionCounter, number>;
  private readonly offered: Features;
  private acked: Features = { lo: 0, hi: 0 };
  private featuresSet = false;
  private protocolAcked = 0;
  private protocolNegotiated = false;
  private mem: VhostGuestMemory | null = null;
  private readonly rings: Ring[] = [newRing(), newRing()];
  running = false;
  /** Why the last message failed (for logs and tests). */
  lastError = '';

  constructor(private readonly backend: SessionBackend, offered = VHOST_DEVICE_FEATURES) {
    let lo = 1 << F_PROTOCOL_FEATURES;
    let hi = 0;
    for (const b of offered) b < 32 ? (lo |= 1 << b) : (hi |= 1 << (b - 32));
    this.offered = { lo: lo >>> 0, hi: hi >>> 0 };
  }

  /** Handle one message. Never throws; fds not kept are closed. */
  async handle(m: Message): Promise<Outcome> {
    this.counters.messages++;
    const keep = new Set<number>();
    try {
      return await this.dispatch(m, keep);
    } catch (e) {
      return this.fail(m, 'bad_size', `internal: ${(e as Error).message}`);
    } finally {
      for (const fd of m.fds) if (!keep.has(fd)) this.safeClose(fd);
    }
  }

  /** The connection ended (EOF or error): stop the device and release everything. */
  async close(): Promise<void> {
    await this.stopDevice();
    for (const r of this.rings) this.dropFds(r);
    this.mem = null;
  }

  private ok(m: Message, reply: Uint8Array | null = null): Outcome {
    if (reply) {
      this.counters.replies++;
      return { reply: encodeReply(m.request, reply), close: false };
    }
    if (this.wantsAck(m)) {
      this.counters.replies++;
      return { reply: encodeReply(m.request, u64Payload(0)), close: false };
    }
    return { reply: null, close: false };
  }

  private wantsAck(m: Message): boolean {
    return (m.flags & FLAG_NEED_REPLY) !== 0 && (this.protocolAcked & (1 << PF_REPLY_ACK)) !== 0;
  }

  /** A malformed or refused message: failure ack if one was asked for, else close the connection. */
  private fail(m: Message, counter: SessionCounter, why: string): Outcome {
    this.counters[counter]++;
    this.lastError = `${m.request}: ${why}`;
    if (this.wantsAck(m) && !isGet(m.request)) {
      this.counters.replies++;
      return { reply: encodeReply(m.request, u64Payload(1)), close: false };
    }
    return { reply: null, close: true };
  }

  private async dispatch(m: Message, keep: Set<number>): Promise<Outcome> {
    if ((m.flags & FLAG_VERSION_MASK) !== VERSION) return this.fail(m, 'bad_version', `version ${m.flags & 3}`);
    const shape = SHAPE[m.request];
    if (shape === undefined) return this.fail(m, 'unknown_request', `unknown request ${m.request}`);
    const p = m.payload;
    if (!sizeOk(shape, p.byteLength, p)) return this.fail(m, 'bad_size', `payload of ${p.byteLength} bytes`);
    const fdsAllowed = m.request === Req.SET_MEM_TABLE || m.request === Req.SET_VRING_KICK || m.request === Req.SET_VRING_CALL || m.request === Req.SET_VRING_ERR;
    if (!fdsAllowed && m.fds.length !== 0) return this.fail(m, 'bad_fds', `${m.fds.length} unexpected fds`);
    switch (m.request) {
      case Req.GET_FEATURES:
        return this.ok(m, u64Payload(this.offered.lo, this.offered.hi));
      case Req.SET_FEATURES: {
        const lo = p.getUint32(0, true);
        const hi = p.getUint32(4, true);
        if ((lo & ~this.offered.lo) !== 0 || (hi & ~this.offered.hi) !== 0) return this.fail(m, 'unsupported_features', 'features not offered');
        await this.stopDevice(); // EVENT_IDX / MRG_RXBUF may change; never disables rings
        this.acked = { lo: lo >>> 0, hi: hi >>> 0 };
        this.featuresSet = true;
        if ((lo >>> F_PROTOCOL_FEATURES) & 1) this.protocolNegotiated = true;
        await this.reconcile();
        return this.ok(m);
      }
      case Req.GET_PROTOCOL_FEATURES:
        return this.ok(m, u64Payload(VHOST_PROTOCOL_FEATURES));
      case Req.SET_PROTOCOL_FEATURES: {
        const lo = p.getUint32(0, true);
        if ((lo & ~VHOST_PROTOCOL_FEATURES) !== 0 || p.getUint32(4, true) !== 0) return this.fail(m, 'unsupported_features', 'protocol features not offered');
        this.protocolAcked = lo;
        this.protocolNegotiated = true;
        return this.ok(m);
      }
      case Req.SET_OWNER:
        return this.ok(m);
      case Req.RESET_OWNER:
        await this.stopDevice();
        for (const r of this.rings) this.dropFds(r);
        this.rings.splice(0, 2, newRing(), newRing());
        this.featuresSet = false;
        return this.ok(m);
      case Req.GET_QUEUE_NUM:
        return this.ok(m, u64Payload(1));
      case Req.GET_MAX_MEM_SLOTS:
        return this.ok(m, u64Payload(MAX_REGIONS));
      case Req.SEND_RARP:
      case Req.NET_SET_MTU:
        return this.ok(m); // not offered; harmless if sent anyway
      case Req.SET_MEM_TABLE:
        return this.setMemTable(m);
      case Req.SET_VRING_ENABLE: {
        const idx = p.getUint32(0, true);
        const on = p.getUint32(4, true);
        if (on > 1) return this.fail(m, 'bad_size', `enable value ${on}`);
        // QEMU may enable rings beyond the first pair without MQ: accept and ignore those.
        if (idx >= NET_RINGS) return idx < 256 ? this.ok(m) : this.fail(m, 'bad_ring_index', `ring ${idx}`);
        this.rings[idx]!.enabled = on === 1;
        await this.reconcile(); // disabling a running ring stops the device
        return this.ok(m);
      }
    }
    // Per-ring messages.
    const idxWord = p.getUint32(0, true);
    const isFdMsg = m.request === Req.SET_VRING_KICK || m.request === Req.SET_VRING_CALL || m.request === Req.SET_VRING_ERR;
    const idx = isFdMsg ? idxWord & VRING_IDX_MASK : idxWord;
    if (idx >= NET_RINGS || (isFdMsg && (idxWord & ~(VRING_IDX_MASK | VRING_NOFD_MASK)) !== 0) || (isFdMsg && p.getUint32(4, true) !== 0)) {
      return this.fail(m, 'bad_ring_index', `ring word ${idxWord}`);
    }
    const r = this.rings[idx]!;
    switch (m.request) {
      case Req.SET_VRING_NUM: {
        const num = p.getUint32(4, true);
        if (num < 1 || num > 32768 || (num & (num - 1)) !== 0) return this.fail(m, 'bad_ring_num', `ring size ${num}`);
        await this.stopDevice();
        r.num = num;
        await this.reconcile();
        return this.ok(m);
      }
      case Req.SET_VRING_BASE: {
        const base = p.getUint32(4, true);
        if (base > 0xffff) return this.fail(m, 'bad_ring_num', `base ${base}`);
        await this.stopDevice();
        r.base = base;
        await this.reconcile();
        return this.ok(m);
      }
      case Req.GET_VRING_BASE: {
        // Stops the ring (vhost-user.rst); the index is read before anything is reset.
        const bases = await this.stopDevice();
        const base = bases ? bases[idx]! : r.base;
        r.base = base;
        this.safeClose(r.kick);
        r.kick = -1;
        return this.ok(m, statePayload(idx, base));
      }
      case Req.SET_VRING_ADDR: {
        const desc = u64(p, 8);
        const used = u64(p, 16);
        const avail = u64(p, 24);
        if (desc < 0 || used < 0 || avail < 0) return this.fail(m, 'bad_address', 'ring address beyond 2^53');
        // With a memory table known, refuse rings outside it now (sizes checked again at start).
        if (this.mem && (this.mem.gpaOfUva(desc, 16) < 0 || this.mem.gpaOfUva(avail, 6) < 0 || this.mem.gpaOfUva(used, 6) < 0)) {
          return this.fail(m, 'bad_address', 'ring address outside every memory region');
        }
        await this.stopDevice();
        r.desc = desc;
        r.used = used;
        r.avail = avail;
        await this.reconcile();
        return this.ok(m);
      }
      default: {
        // SET_VRING_KICK / CALL / ERR: one fd unless the NOFD bit is set.
        const nofd = (idxWord & VRING_NOFD_MASK) !== 0;
        if (nofd ? m.fds.length !== 0 : m.fds.length !== 1) return this.fail(m, 'bad_fds', `${m.fds.length} fds (nofd=${nofd})`);
        const fd = nofd ? (m.request === Req.SET_VRING_KICK ? -2 : -1) : m.fds[0]!;
        if (fd >= 0) keep.add(fd);
        if (m.request === Req.SET_VRING_ERR) {
          this.safeClose(r.err);
          r.err = fd;
          return this.ok(m);
        }
        await this.stopDevice(); // a new kick or call fd: restart with it (never disables the ring)
        if (m.request === Req.SET_VRING_KICK) {
          this.safeClose(r.kick);
          r.kick = fd;
          if (!this.protocolNegotiated) r.enabled = true; // without protocol features a ring starts enabled
        } else {
          this.safeClose(r.call);
          r.call = fd;
        }
        await this.reconcile();
        return this.ok(m);
      }
    }
  }

  private async setMemTable(m: Message): Promise<Outcome> {
    const p = m.payload;
    const n = p.getUint32(0, true);
    if (m.fds.length !== n) return this.fail(m, 'bad_fds', `${m.fds.length} fds for ${n} regions`);
    const specs: RegionSpec[] = [];
    for (let i = 0; i < n; i++) {
      const o = 8 + 32 * i;
      specs.push({ gpa: u64(p, o), size: u64(p, o + 8), uva: u64(p, o + 16), mmapOffset: u64(p, o + 24) });
    }
    const bad = regionsValid(specs);
    if (bad) return this.fail(m, 'bad_region', bad);
    const mapped: MappedRegion[] = [];
    for (let i = 0; i < n; i++) {
      const s = specs[i]!;
      const off = Math.floor(s.mmapOffset / PAGE) * PAGE;
      const base = s.mmapOffset - off;
      try {
        mapped.push({ ...s, sab: this.backend.mmap(m.fds[i]!, s.size + base, off), base });
      } catch (e) {
        return this.fail(m, 'mmap_failed', `region ${i}: ${(e as Error).message}`);
      }
    }
    await this.stopDevice(); // SET_MEM_TABLE while running: stop, swap the mappings, restart
    this.mem = new VhostGuestMemory(mapped); // the mappings keep the memory; fds are closed by handle()
    this.counters.mem_tables++;
    await this.reconcile();
    return this.ok(m);
  }

  private ringReady(r: Ring): boolean {
    return r.num > 0 && r.desc >= 0 && r.kick !== -1 && (r.enabled || !this.protocolNegotiated);
  }

  /** Start the device if everything it needs is there. Addresses outside memory are counted. */
  private async reconcile(): Promise<void> {
    if (this.running && !this.rings.every((r) => this.ringReady(r))) await this.stopDevice();
    if (this.running || !this.mem || !this.featuresSet || !this.rings.every((r) => this.ringReady(r))) return;
    const mem = this.mem;
    const q: (QueueAddresses & { base: number })[] = [];
    for (const r of this.rings) {
      const desc = mem.gpaOfUva(r.desc, 16 * r.num);
      const avail = mem.gpaOfUva(r.avail, 6 + 2 * r.num);
      const used = mem.gpaOfUva(r.used, 6 + 8 * r.num);
      if (desc < 0 || avail < 0 || used < 0) {
        this.counters.bad_address++;
        this.lastError = 'ring addresses outside every memory region';
        return;
      }
      q.push({ desc, avail, used, size: r.num, base: r.base });
    }
    const rings: VmRings = {
      regions: mem.regions.map((x) => ({ sab: x.sab, gpa: x.gpa, size: x.size, base: x.base })),
      toGuest: q[0]!, fromGuest: q[1]!,
      eventIdx: hasFeature(this.acked, F_EVENT_IDX), mrgRxbuf: hasFeature(this.acked, F_MRG_RXBUF),
      offloads: {
        csum: hasFeature(this.acked, F_CSUM), hostTso4: hasFeature(this.acked, F_HOST_TSO4), hostTso6: hasFeature(this.acked, F_HOST_TSO6),
        guestCsum: hasFeature(this.acked, F_GUEST_CSUM), guestTso4: hasFeature(this.acked, F_GUEST_TSO4), guestTso6: hasFeature(this.acked, F_GUEST_TSO6),
      },
      callFds: [this.rings[0]!.call, this.rings[1]!.call],
    };
    try {
      await this.backend.start(rings, [this.rings[0]!.kick, this.rings[1]!.kick]);
      this.running = true;
      this.counters.starts++;
    } catch (e) {
      this.counters.bad_address++;
      this.lastError = `start refused: ${(e as Error).message}`;
    }
  }

  private async stopDevice(): Promise<[number, number] | null> {
    if (!this.running) return null;
    this.running = false;
    this.counters.stops++;
    const got = await this.backend.stop();
    // -1: the engine had no queue (it stopped after a ring violation): keep the last known base.
    const bases: [number, number] = [got[0] >= 0 ? got[0] : this.rings[0]!.base, got[1] >= 0 ? got[1] : this.rings[1]!.base];
    this.rings[0]!.base = bases[0];
    this.rings[1]!.base = bases[1];
    return bases;
  }

  private dropFds(r: Ring): void {
    for (const fd of [r.kick, r.call, r.err]) this.safeClose(fd);
    r.kick = r.call = r.err = -1;
  }

  private safeClose(fd: number): void {
    if (fd < 0) return;
    try {
      this.backend.close(fd);
    } catch {
      /* already closed */
    }
  }
}

function isGet(req: number): boolean {
  return req === Req.GET_FEATURES || req === Req.GET_PROTOCOL_FEATURES || req === Req.GET_VRING_BASE || req === Req.GET_QUEUE_NUM || req === Req.GET_MAX_MEM_SLOTS;
}
