/**
 * A classic pcap file writer (the libpcap format tcpdump and tshark read): a 24-byte global
 * header, then per frame a 16-byte record header and the frame bytes. Link type 1
 * (LINKTYPE_ETHERNET), microsecond timestamps, native little-endian magic 0xa1b2c3d4.
 *
 * ```
 *  global header                            record header (per frame)
 *  0  magic u32 0xa1b2c3d4                  0  ts_sec u32
 *  4  version_major u16 2 | minor u16 4     4  ts_usec u32
 *  8  thiszone i32 0                        8  incl_len u32 (bytes stored, <= snaplen)
 *  12 sigfigs u32 0                         12 orig_len u32 (bytes on the wire)
 *  16 snaplen u32                           16 frame bytes ...
 *  20 network u32 (1 = Ethernet)
 * ```
 * Records are gathered in a 256 KiB buffer and written with one write() when it fills, on flush()
 * and on close(): a capture costs a copy per frame, not a system call.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { isIPv4 } from 'node:net';

export const PCAP_MAGIC = 0xa1b2c3d4;
export const LINKTYPE_ETHERNET = 1;
const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;
const BUFFER_BYTES = 256 * 1024;

export class PcapWriter {
  private fd: number;
  private readonly buf = Buffer.alloc(BUFFER_BYTES);
  private used = 0;
  frames = 0;

  private constructor(fd: number, readonly snaplen: number) {
    this.fd = fd;
    const b = this.buf;
    b.writeUInt32LE(PCAP_MAGIC, 0);
    b.writeUInt16LE(2, 4);
    b.writeUInt16LE(4, 6);
    b.writeInt32LE(0, 8);
    b.writeUInt32LE(0, 12);
    b.writeUInt32LE(snaplen, 16);
    b.writeUInt32LE(LINKTYPE_ETHERNET, 20);
    this.used = GLOBAL_HEADER;
    this.flush(); // a reader sees a valid (empty) file at once
  }

  /** Create (truncate) `path` and write the global header. */
  static open(path: string, snaplen = 65535): PcapWriter {
    return new PcapWriter(openSync(path, 'w', 0o644), snaplen);
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  /** Start a record of `origLen` bytes; returns the offset to write its (incl) bytes at. */
  private record(origLen: number, nowMs: number): number {
    const incl = Math.min(origLen, this.snaplen);
    if (this.used + RECORD_HEADER + incl > BUFFER_BYTES) this.flush();
    const b = this.buf;
    const sec = Math.floor(nowMs / 1000);
    b.writeUInt32LE(sec >>> 0, this.used);
    b.writeUInt32LE(Math.floor((nowMs - sec * 1000) * 1000) >>> 0, this.used + 4);
    b.writeUInt32LE(incl, this.used + 8);
    b.writeUInt32LE(origLen, this.used + 12);
    const at = this.used + RECORD_HEADER;
    this.used = at + incl;
    this.frames++;
    return at;
  }

  /** Append the Ethernet frame src[off..off+len). */
  write(src: Uint8Array, off: number, len: number, nowMs = performance.timeOrigin + performance.now()): void {
    if (this.fd < 0) return;
    const at = this.record(len, nowMs);
    const incl = Math.min(len, this.snaplen);
    this.buf.set(src.subarray(off, off + incl), at);
  }

  /**
   * Append a UDP datagram as the Ethernet frame that carried it: the socket API hides the outer
   * Ethernet and IP headers, so they are rebuilt from the addresses (MACs zero, IPv4 header
   * checksum computed, UDP checksum 0 = none, RFC 768; IPv6 addresses as given).
   */
  writeUdp(srcIp: string, srcPort: number, dstIp: string, dstPort: number, payload: Uint8Array, off: number, len: number,
    nowMs = performance.timeOrigin + performance.now()): void {
    if (this.fd < 0) return;
    const v4 = isIPv4(srcIp);
    const ipLen = v4 ? 20 : 40;
    const total = 14 + ipLen + 8 + len;
    if (total > this.snaplen || total > BUFFER_BYTES - RECORD_HEADER) return;
    const at = this.record(total, nowMs);
    const b = this.buf;
    b.fill(0, at, at + 12);
    b.writeUInt16BE(v4 ? 0x0800 : 0x86dd, at + 12);
    const ip = at + 14;
    if (v4) {
      b.fill(0, ip, ip + 20);
      b[ip] = 0x45;
      b.writeUInt16BE(20 + 8 + len, ip + 2);
      b[ip + 8] = 64;
      b[ip + 9] = 17;
      writeIpv4(b, ip + 12, srcIp);
      writeIpv4(b, ip + 16, dstIp);
      b.writeUInt16BE(ipv4Checksum(b, ip, 20), ip + 10);
    } else {
      b.fill(0, ip, ip + 40);
      b[ip] = 0x60;
      b.writeUInt16BE(8 + len, ip + 4);
      b[ip + 6] = 17;
      b[ip + 7] = 64;
      writeIpv6(b, ip + 8, srcIp);
      writeIpv6(b, ip + 24, dstIp);
    }
    const udp = ip + ipLen;
    b.writeUInt16BE(srcPort, udp);
    b.writeUInt16BE(dstPort, udp + 2);
    b.writeUInt16BE(8 + len, udp + 4);
    b.writeUInt16BE(0, udp + 6);
    b.set(payload.subarray(off, off + len), udp + 8);
  }

  flush(): void {
    if (this.fd < 0 || this.used === 0) return;
    let done = 0;
    while (done < this.used) done += writeSync(this.fd, this.buf, done, this.used - done);
    this.used = 0;
  }

  close(): void {
    if (this.fd < 0) return;
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
  }
}

/** RFC 791, 3.1: the 16-bit one's complement of the one's complement sum of the header's words. */
export function ipv4Checksum(b: Uint8Array, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i + 1 < len; i += 2) s += (b[off + i]! << 8) | b[off + i + 1]!;
  if (len & 1) s += b[off + len - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function writeIpv4(b: Uint8Array, off: number, ip: string): void {
  const p = ip.split('.');
  for (let i = 0; i < 4; i++) b[off + i] = Number(p[i]) & 0xff;
}

function writeIpv6(b: Uint8Array, off: number, ip: string): void {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const words = [...h, ...new Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  for (let i = 0; i < 8; i++) {
    const w = parseInt(words[i] ?? '0', 16) || 0;
    b[off + 2 * i] = w >> 8;
    b[off + 2 * i + 1] = w & 0xff;
  }
}
