/**
 * A small IPv4 host stack for isolate guests: Ethernet II, ARP (RFC 826), IPv4 (RFC 791; no
 * options are interpreted, fragments are dropped and counted, no reassembly), ICMP echo (RFC 792:
 * answers requests, `ping()` sends them) and UDP (RFC 768) with node:dgram-shaped sockets.
 *
 * Everything read from the network is checked before use (lengths, IHL, total length, checksums);
 * a bad frame moves exactly one named counter (stats.ts) and never throws. The stack does no I/O
 * itself: frames come in through input() and leave through the NetLink, and time comes from the
 * `clock` option, so unit tests drive it directly with a fake clock.
 */
import { ArpCache, ARP_BYTES, ARP_REPLY, ARP_REQUEST } from './arp.js';
import { checksum, finish, partialSum } from './checksum.js';
import { formatIpv4, parseCidr, parseIpv4, prefixMask, readU16, readU32, writeU16, writeU32 } from './addr.js';
import { newNetStats, type NetStats } from './stats.js';
import { UdpSocket, type UdpHost } from './udp.js';

export const ETH_ARP = 0x0806;
export const ETH_IPV4 = 0x0800;
export const PROTO_ICMP = 1;
export const PROTO_UDP = 17;
const BROADCAST_IP = 0xffffffff;
const EPHEMERAL_MIN = 49152;

/** Where the stack's frames go: a VIF driver in a guest, or a test. */
export interface NetLink {
  /** The interface's MAC (6 bytes). */
  readonly mac: Uint8Array;
  /** Largest IP packet (the VIF's MTU). */
  readonly mtu: number;
  /** Queue frame[0..len) for transmission; false when the transmit ring is full. */
  transmit(frame: Uint8Array, len: number): boolean;
}

export interface NetOptions {
  /** Address and prefix, "10.0.0.2/24". */
  ip: string;
  /** Default gateway for destinations outside the prefix (none: they are dropped, out_no_route). */
  gateway?: string;
  /** Milliseconds; default performance.now. */
  clock?: () => number;
  /** TTL of sent packets (default 64). */
  ttl?: number;
  /** ARP cache entry lifetime in ms (default 60 s). */
  arpLifetimeMs?: number;
}

interface PendingPing {
  sent: number;
  resolve: (rttMs: number | null) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class NetStack implements UdpHost {
  readonly ip: number;
  readonly prefix: number;
  readonly mask: number;
  readonly gateway: number | null;
  readonly stats: NetStats = newNetStats();
  readonly arp: ArpCache;
  private readonly clock: () => number;
  private readonly ttl: number;
  private readonly out = new Uint8Array(14 + 9000 + 4);
  private readonly sockets = new Map<number, UdpSocket>();
  private readonly pings = new Map<number, PendingPing>();
  private readonly pingId = (Math.random() * 0x10000) >>> 0;
  private pingSeq = 0;
  private ipId = 0;
  private nextEphemeral = EPHEMERAL_MIN;

  constructor(readonly link: NetLink, opts: NetOptions) {
    const cidr = parseCidr(opts.ip);
    if (cidr === null) throw new RangeError(`ip must look like 10.0.0.2/24, got "${opts.ip}"`);
    this.ip = cidr.ip;
    this.prefix = cidr.prefix;
    this.mask = prefixMask(cidr.prefix);
    const gw = opts.gateway === undefined ? null : parseIpv4(opts.gateway);
    if (opts.gateway !== undefined && gw === null) throw new RangeError(`gateway must be an IPv4 address, got "${opts.gateway}"`);
    this.gateway = gw;
    this.clock = opts.clock ?? (() => performance.now());
    this.ttl = opts.ttl ?? 64;
    this.arp = new ArpCache(opts.arpLifetimeMs ?? 60_000);
  }

  get address(): string {
    return `${formatIpv4(this.ip)}/${this.prefix}`;
  }

  private get subnetBroadcast(): number {
    return (this.ip | ~this.mask) >>> 0;
  }

  private isBroadcast(ip: number): boolean {
    return ip === BROADCAST_IP || (this.prefix < 31 && ip === this.subnetBroadcast);
  }

  // ---- input ------------------------------------------------------------------------------------

  /** Handle one received Ethernet frame b[off..off+len). */
  input(b: Uint8Array, off: number, len: number): void {
    const s = this.stats;
    s.frames_in++;
    if (len < 14) return void s.eth_short++;
    const mac = this.link.mac;
    let bcast = true;
    let mine = true;
    for (let i = 0; i < 6; i++) {
      if (b[off + i] !== 0xff) bcast = false;
      if (b[off + i] !== mac[i]) mine = false;
    }
    if (!mine && !bcast) return void s.eth_not_for_us++;
    const type = readU16(b, off + 12);
    if (type === ETH_ARP) this.arpIn(b, off + 14, len - 14);
    else if (type === ETH_IPV4) this.ipIn(b, off + 14, len - 14, bcast);
    else s.eth_unknown_type++;
  }

  /** RFC 826, "Packet Reception". */
  private arpIn(b: Uint8Array, p: number, len: number): void {
    const s = this.stats;
    if (len < ARP_BYTES) return void s.arp_short++;
    if (readU16(b, p) !== 1 || readU16(b, p + 2) !== ETH_IPV4 || b[p + 4] !== 6 || b[p + 5] !== 4) return void s.arp_bad_format++;
    const op = readU16(b, p + 6);
    if (op !== ARP_REQUEST && op !== ARP_REPLY) return void s.arp_bad_op++;
    const spa = readU32(b, p + 14);
    const tpa = readU32(b, p + 24);
    const now = this.clock();
    // The sender's MAC must be a station (unicast) and its IP a host address, or it is not learned.
    const learnable = (b[p + 8]! & 1) === 0 && spa !== 0 && !this.isBroadcast(spa) && spa !== this.ip;
    const merged = learnable && this.arp.has(spa);
    if (merged) this.flushQueued(spa, this.arp.learn(spa, b, p + 8, now));
    if (tpa !== this.ip) return void s.arp_not_for_us++;
    s.arp_in++;
    if (learnable && !merged) {
      this.flushQueued(spa, this.arp.learn(spa, b, p + 8, now));
      s.arp_learned++;
    }
    if (op === ARP_REQUEST) this.arpSend(ARP_REPLY, b.subarray(p + 8, p + 14), spa);
  }

  private ipIn(b: Uint8Array, p: number, avail: number, l2bcast: boolean): void {
    const s = this.stats;
    if (avail < 20) return void s.ip_short++;
    if (b[p]! >> 4 !== 4) return void s.ip_bad_version++;
    const ihl = (b[p]! & 0x0f) * 4;
    if (ihl < 20 || ihl > avail) return void s.ip_bad_ihl++;
    const total = readU16(b, p + 2);
    if (total < ihl || total > avail) return void s.ip_bad_length++; // Ethernet padding may follow: total < avail is fine
    if (checksum(b, p, ihl) !== 0) return void s.ip_bad_checksum++;
    if ((readU16(b, p + 6) & 0x3fff) !== 0) return void s.ip_fragment++; // MF set or offset != 0
    if (b[p + 8] === 0) return void s.ip_ttl_zero++;
    const src = readU32(b, p + 12);
    const dst = readU32(b, p + 16);
    const toBroadcast = this.isBroadcast(dst);
    if (dst !== this.ip && !toBroadcast) return void s.ip_not_for_us++;
    if (src >= 0xe0000000 || this.isBroadcast(src) || src === this.ip) return void s.ip_bad_source++;
    const proto = b[p + 9];
    if (proto === PROTO_ICMP) this.icmpIn(b, p + ihl, total - ihl, src, toBroadcast || l2bcast);
    else if (proto === PROTO_UDP) this.udpIn(b, p + ihl, total - ihl, src, dst);
    else s.ip_unknown_proto++;
  }

  private icmpIn(b: Uint8Array, q: number, len: number, src: number, broadcast: boolean): void {
    const s = this.stats;
    if (len < 8) return void s.icmp_short++;
    if (checksum(b, q, len) !== 0) return void s.icmp_bad_checksum++;
    const type = b[q]!;
    if (type === 8 && b[q + 1] === 0) {
      // Linux ignores echo requests sent to broadcast by default (icmp_echo_ignore_broadcasts): so do we.
      if (broadcast) return void s.icmp_broadcast_ignored++;
      const o = this.out;
      const at = 34;
      if (20 + len > this.link.mtu) return void s.out_too_big++;
      o.set(b.subarray(q, q + len), at);
      o[at] = 0; // echo reply, RFC 792: same identifier, sequence and data
      o[at + 1] = 0;
      writeU16(o, at + 2, 0);
      writeU16(o, at + 2, checksum(o, at, len));
      s.icmp_echo_answered++;
      this.ipOut(src, PROTO_ICMP, len);
      return;
    }
    if (type === 0 && b[q + 1] === 0) {
      const key = readU32(b, q + 4);
      const p = this.pings.get(key);
      if (p === undefined) return void s.icmp_unmatched_reply++;
      this.pings.delete(key);
      clearTimeout(p.timer);
      s.icmp_echo_replies++;
      p.resolve(this.clock() - p.sent);
      return;
    }
    s.icmp_other_type++;
  }

  private udpIn(b: Uint8Array, q: number, len: number, src: number, dst: number): void {
    const s = this.stats;
    if (len < 8) return void s.udp_short++;
    const ulen = readU16(b, q + 4);
    if (ulen < 8 || ulen > len) return void s.udp_bad_length++;
    if (readU16(b, q + 6) !== 0) { // 0: the sender computed no checksum (RFC 768)
      const pseudo = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + PROTO_UDP + ulen;
      if (finish(partialSum(b, q, ulen, pseudo)) !== 0) return void s.udp_bad_checksum++;
    }
    const sock = this.sockets.get(readU16(b, q + 2));
    if (sock === undefined) return void s.udp_no_socket++;
    s.udp_delivered++;
    sock.deliver(Buffer.from(b.subarray(q + 8, q + ulen)), src, readU16(b, q));
  }

  // ---- output -----------------------------------------------------------------------------------

  private transmit(frame: Uint8Array, len: number): boolean {
    if (!this.link.transmit(frame, len)) {
      this.stats.out_ring_full++;
      return false;
    }
    this.stats.frames_out++;
    return true;
  }

  private arpSend(op: number, targetMac: Uint8Array | null, tpa: number): void {
    const o = this.out;
    if (op === ARP_REPLY && targetMac) o.set(targetMac, 0);
    else o.fill(0xff, 0, 6);
    o.set(this.link.mac, 6);
    writeU16(o, 12, ETH_ARP);
    writeU16(o, 14, 1);
    writeU16(o, 16, ETH_IPV4);
    o[18] = 6;
    o[19] = 4;
    writeU16(o, 20, op);
    o.set(this.link.mac, 22);
    writeU32(o, 28, this.ip);
    if (op === ARP_REPLY && targetMac) o.set(targetMac, 32);
    else o.fill(0, 32, 38);
    writeU32(o, 38, tpa);
    o.fill(0, 42, 60); // pad to the Ethernet minimum
    if (this.transmit(o, 60)) {
      if (op === ARP_REPLY) this.stats.arp_replies_sent++;
      else this.stats.arp_requests_sent++;
    }
  }

  /** Frames that waited for `ip` to resolve: fill in the MAC and send. */
  private flushQueued(ip: number, frames: Uint8Array[]): void {
    if (frames.length === 0) return;
    const mac = this.arp.lookup(ip, this.clock());
    for (const f of frames) {
      if (mac) f.set(mac, 0);
      this.transmit(f, f.length);
    }
  }

  /**
   * Send the IP payload already written at out[34..34+len) to `dst`: fill in the Ethernet and IP
   * headers, resolve the next hop. Returns 'sent', 'queued' (waiting for ARP) or a drop reason.
   */
  private ipOut(dst: number, proto: number, len: number): 'sent' | 'queued' | string {
    const s = this.stats;
    const o = this.out;
    if (20 + len > this.link.mtu) {
      s.out_too_big++;
      return 'out_too_big';
    }
    o[14] = 0x45;
    o[15] = 0;
    writeU16(o, 16, 20 + len);
    writeU16(o, 18, (this.ipId = (this.ipId + 1) & 0xffff));
    writeU16(o, 20, 0x4000); // DF: this stack never fragments
    o[22] = this.ttl;
    o[23] = proto;
    writeU16(o, 24, 0);
    writeU32(o, 26, this.ip);
    writeU32(o, 30, dst);
    writeU16(o, 24, checksum(o, 14, 20));
    o.set(this.link.mac, 6);
    writeU16(o, 12, ETH_IPV4);
    const frameLen = Math.max(60, 34 + len);
    if (34 + len < 60) o.fill(0, 34 + len, 60);
    s.ip_out++;
    if (this.isBroadcast(dst)) {
      o.fill(0xff, 0, 6);
      return this.transmit(o, frameLen) ? 'sent' : 'out_ring_full';
    }
    let hop = dst;
    if (((dst ^ this.ip) & this.mask) !== 0) {
      if (this.gateway === null) {
        s.out_no_route++;
        return 'out_no_route';
      }
      hop = this.gateway;
    }
    const now = this.clock();
    const mac = this.arp.lookup(hop, now);
    if (mac !== null) {
      o.set(mac, 0);
      return this.transmit(o, frameLen) ? 'sent' : 'out_ring_full';
    }
    const r = this.arp.enqueue(hop, o.slice(0, frameLen), now);
    if (r === 'full') {
      s.arp_queue_full++;
      return 'arp_queue_full';
    }
    if (r === 'request') this.arpSend(ARP_REQUEST, null, hop);
    return 'queued';
  }

  // ---- UDP (UdpHost) ----------------------------------------------------------------------------

  createSocket(_type: 'udp4' = 'udp4'): UdpSocket {
    return new UdpSocket(this);
  }

  bindUdp(sock: UdpSocket, port: number): number {
    let p = port;
    if (p === 0) {
      for (let i = 0; i < 16384 && this.sockets.has(this.nextEphemeral); i++) this.nextEphemeral = this.nextEphemeral === 65535 ? EPHEMERAL_MIN : this.nextEphemeral + 1;
      p = this.nextEphemeral;
    }
    if (this.sockets.has(p)) throw Object.assign(new Error(`bind EADDRINUSE ${formatIpv4(this.ip)}:${p}`), { code: 'EADDRINUSE' });
    this.sockets.set(p, sock);
    return p;
  }

  unbindUdp(port: number): void {
    this.sockets.delete(port);
  }

  sendUdp(srcPort: number, dstIp: number, dstPort: number, data: Uint8Array): 'sent' | 'queued' | string {
    const ulen = 8 + data.length;
    if (20 + ulen > this.link.mtu) {
      this.stats.out_too_big++;
      return 'out_too_big';
    }
    const o = this.out;
    const q = 34;
    writeU16(o, q, srcPort);
    writeU16(o, q + 2, dstPort);
    writeU16(o, q + 4, ulen);
    writeU16(o, q + 6, 0);
    o.set(data, q + 8);
    const pseudo = (this.ip >>> 16) + (this.ip & 0xffff) + (dstIp >>> 16) + (dstIp & 0xffff) + PROTO_UDP + ulen;
    const c = finish(partialSum(o, q, ulen, pseudo));
    writeU16(o, q + 6, c === 0 ? 0xffff : c); // RFC 768: a computed 0 is sent as all ones
    const r = this.ipOut(dstIp, PROTO_UDP, ulen);
    if (r === 'sent' || r === 'queued') this.stats.udp_sent++;
    return r;
  }

  // ---- ICMP echo ---------------------------------------------------------------------------------

  /**
   * Send one ICMP echo request to `ip` with `size` data bytes; resolves with the round trip in ms,
   * or null when no reply came within `timeoutMs` (or the request could not be sent).
   */
  ping(ip: string, opts: { timeoutMs?: number; size?: number } = {}): Promise<number | null> {
    const dst = parseIpv4(ip);
    if (dst === null) return Promise.reject(new TypeError(`ping: not an IPv4 address: ${ip}`));
    const size = opts.size ?? 56;
    const seq = (this.pingSeq = (this.pingSeq + 1) & 0xffff);
    const key = ((this.pingId << 16) | seq) >>> 0;
    const o = this.out;
    const q = 34;
    if (size < 0 || 28 + size > this.link.mtu) return Promise.reject(new RangeError(`ping: size must be in 0..${this.link.mtu - 28}`));
    o[q] = 8;
    o[q + 1] = 0;
    writeU16(o, q + 2, 0);
    writeU32(o, q + 4, key);
    for (let i = 0; i < size; i++) o[q + 8 + i] = i & 0xff;
    writeU16(o, q + 2, checksum(o, q, 8 + size));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pings.delete(key);
        resolve(null);
      }, opts.timeoutMs ?? 1000);
      this.pings.set(key, { sent: this.clock(), resolve, timer });
      const r = this.ipOut(dst, PROTO_ICMP, 8 + size);
      if (r !== 'sent' && r !== 'queued') {
        clearTimeout(timer);
        this.pings.delete(key);
        resolve(null);
      }
    });
  }

  // ---- timers ------------------------------------------------------------------------------------

  /** Run ARP timers (retries, give-ups, expiry). */
  tick(): void {
    const r = this.arp.tick(this.clock(), (ip) => this.arpSend(ARP_REQUEST, null, ip));
    this.stats.arp_unresolved += r.dropped;
    this.stats.arp_expired += r.expired;
  }

  /** Milliseconds until tick() has work (Infinity: none). */
  msToNextTick(): number {
    return this.arp.nextDeadline() - this.clock();
  }
}
