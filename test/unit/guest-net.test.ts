/**
 * The guest network stack (src/guest/net) driven directly: frames in through input(), frames out
 * captured from a fake link, time from a fake clock. Hostile packets (bad checksums, short headers,
 * bad IHL and total length, fragments, TTL 0, broadcast sources) each move exactly their counter,
 * and afterwards the stack still answers. `inputBalance` checks that every frame in was either
 * delivered or counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetStack, type NetLink } from '../../src/guest/net/stack.js';
import { inputBalance } from '../../src/guest/net/stats.js';
import { checksum, finish, partialSum } from '../../src/guest/net/checksum.js';
import { parseMac } from '../../src/device/mac-table.js';

const ME = parseMac('02:00:00:00:00:02')!;
const PEER = parseMac('02:00:00:00:00:01')!;
const ME_IP = [10, 0, 0, 2];
const PEER_IP = [10, 0, 0, 1];

function rig(opts: { ringFull?: boolean } = {}) {
  let now = 1000;
  const sent: Uint8Array[] = [];
  const link: NetLink = {
    mac: ME,
    mtu: 1500,
    transmit: (f, len) => (opts.ringFull ? false : (sent.push(f.slice(0, len)), true)),
  };
  const stack = new NetStack(link, { ip: '10.0.0.2/24', clock: () => now });
  return { stack, sent, advance: (ms: number) => (now += ms), input: (f: Uint8Array) => stack.input(f, 0, f.length) };
}

function eth(dst: Uint8Array | number[], type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(Math.max(60, 14 + payload.length));
  f.set(dst, 0);
  f.set(PEER, 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(payload, 14);
  return f;
}

function arp(op: number, spa: number[], tpa: number[], sha = PEER): Uint8Array {
  const p = new Uint8Array(28);
  p.set([0, 1, 8, 0, 6, 4, 0, op]);
  p.set(sha, 8);
  p.set(spa, 14);
  p.set(tpa, 24);
  return eth(op === 1 ? [255, 255, 255, 255, 255, 255] : ME, 0x0806, p);
}

/** An IPv4 packet with a correct header checksum unless told otherwise. */
function ipv4(proto: number, body: Uint8Array, o: { src?: number[]; dst?: number[]; ttl?: number; frag?: number; ihl?: number; total?: number; badSum?: boolean; version?: number } = {}): Uint8Array {
  const ihl = o.ihl ?? 5;
  const hl = Math.max(20, ihl * 4);
  const p = new Uint8Array(hl + body.length);
  p[0] = ((o.version ?? 4) << 4) | ihl;
  const total = o.total ?? hl + body.length;
  p[2] = total >> 8;
  p[3] = total & 0xff;
  p[6] = (o.frag ?? 0) >> 8;
  p[7] = (o.frag ?? 0) & 0xff;
  p[8] = o.ttl ?? 64;
  p[9] = proto;
  p.set(o.src ?? PEER_IP, 12);
  p.set(o.dst ?? ME_IP, 16);
  const c = checksum(p, 0, Math.min(hl, p.length));
  p[10] = c >> 8;
  p[11] = (c & 0xff) ^ (o.badSum ? 1 : 0);
  p.set(body, hl);
  return p;
}

function icmpEcho(type: number, id: number, seq: number, data = 32, badSum = false): Uint8Array {
  const m = new Uint8Array(8 + data);
  m[0] = type;
  m[4] = id >> 8;
  m[5] = id & 0xff;
  m[6] = seq >> 8;
  m[7] = seq & 0xff;
  for (let i = 0; i < data; i++) m[8 + i] = i;
  const c = checksum(m, 0, m.length) ^ (badSum ? 1 : 0);
  m[2] = c >> 8;
  m[3] = c & 0xff;
  return m;
}

function udp(srcPort: number, dstPort: number, data: Uint8Array, o: { src?: number[]; dst?: number[]; badSum?: boolean; len?: number; noSum?: boolean } = {}): Uint8Array {
  const u = new Uint8Array(8 + data.length);
  const len = o.len ?? u.length;
  u.set([srcPort >> 8, srcPort & 0xff, dstPort >> 8, dstPort & 0xff, len >> 8, len & 0xff, 0, 0]);
  u.set(data, 8);
  if (!o.noSum) {
    const s = o.src ?? PEER_IP;
    const d = o.dst ?? ME_IP;
    const pseudo = ((s[0]! << 8) | s[1]!) + ((s[2]! << 8) | s[3]!) + ((d[0]! << 8) | d[1]!) + ((d[2]! << 8) | d[3]!) + 17 + u.length;
    let c = finish(partialSum(u, 0, u.length, pseudo));
    if (c === 0) c = 0xffff;
    if (o.badSum) c ^= 0x10;
    u[6] = c >> 8;
    u[7] = c & 0xff;
  }
  return u;
}

/** Teach the stack the peer's MAC (ARP request for us). */
function learnPeer(r: ReturnType<typeof rig>): void {
  r.input(arp(1, PEER_IP, ME_IP));
  r.sent.length = 0;
}

test('ARP: answers a request for its address, learns the sender, ignores requests for others', () => {
  const r = rig();
  r.input(arp(1, PEER_IP, ME_IP));
  assert.equal(r.sent.length, 1);
  const reply = r.sent[0]!;
  assert.deepEqual([...reply.subarray(0, 6)], [...PEER]);
  assert.equal((reply[12]! << 8) | reply[13]!, 0x0806);
  assert.equal(reply[21], 2, 'op = reply');
  assert.deepEqual([...reply.subarray(22, 28)], [...ME], 'sender MAC = ours');
  assert.deepEqual([...reply.subarray(28, 32)], ME_IP);
  assert.deepEqual([...reply.subarray(38, 42)], PEER_IP);
  assert.equal(r.stack.stats.arp_learned, 1);
  r.input(arp(1, PEER_IP, [10, 0, 0, 9]));
  assert.equal(r.sent.length, 1, 'no reply for another address');
  assert.equal(r.stack.stats.arp_not_for_us, 1);
  assert.equal(inputBalance(r.stack.stats), 0);
});

test('ARP: hostile packets are counted and never learned', () => {
  const r = rig();
  const short = arp(1, PEER_IP, ME_IP).slice(0, 14 + 20);
  r.stack.input(short, 0, short.length);
  const badHlen = arp(1, PEER_IP, ME_IP);
  badHlen[18] = 8;
  r.input(badHlen);
  const badOp = arp(1, PEER_IP, ME_IP);
  badOp[21] = 7;
  r.input(badOp);
  r.input(arp(1, PEER_IP, ME_IP, parseMac('01:00:5e:00:00:01')!)); // multicast sender MAC: answered? not learned
  const s = r.stack.stats;
  assert.equal(s.arp_short, 1);
  assert.equal(s.arp_bad_format, 1);
  assert.equal(s.arp_bad_op, 1);
  assert.equal(s.arp_learned, 0);
  assert.equal(r.stack.arp.snapshot().length, 0);
  assert.equal(inputBalance(s), 0);
});

test('ARP: a send to an unknown address queues, requests, and flushes when the reply comes', () => {
  const r = rig();
  const sock = r.stack.createSocket();
  sock.send(new Uint8Array([1, 2, 3]), 9, '10.0.0.1');
  assert.equal(r.sent.length, 1, 'only the ARP request went out');
  assert.equal(r.sent[0]![21], 1);
  r.input(arp(2, PEER_IP, ME_IP));
  assert.equal(r.sent.length, 2, 'the queued datagram followed the reply');
  const f = r.sent[1]!;
  assert.deepEqual([...f.subarray(0, 6)], [...PEER]);
  assert.equal(f[23], 17);
});

test('ARP: retries, then gives up and counts the queued frames; entries expire', () => {
  const r = rig();
  const sock = r.stack.createSocket();
  sock.send(new Uint8Array(4), 9, '10.0.0.7');
  sock.send(new Uint8Array(4), 9, '10.0.0.7');
  for (let i = 0; i < 5; i++) {
    r.advance(1000);
    r.stack.tick();
  }
  assert.equal(r.stack.stats.arp_requests_sent, 3);
  assert.equal(r.stack.stats.arp_unresolved, 2);
  learnPeer(r);
  assert.ok(r.stack.arp.has(0x0a000001));
  r.advance(61_000);
  r.stack.tick();
  assert.equal(r.stack.stats.arp_expired, 1);
  assert.ok(!r.stack.arp.has(0x0a000001), 'gone after its lifetime');
});

test('ICMP: answers an echo request with the same id, sequence and data, and a valid checksum', () => {
  const r = rig();
  learnPeer(r);
  r.input(eth(ME, 0x0800, ipv4(1, icmpEcho(8, 0x1234, 7))));
  assert.equal(r.sent.length, 1);
  const f = r.sent[0]!;
  const ip = f.subarray(14);
  assert.equal(checksum(ip, 0, 20), 0, 'IP header checksum');
  assert.deepEqual([...ip.subarray(16, 20)], PEER_IP);
  const ic = ip.subarray(20, 20 + 40);
  assert.equal(ic[0], 0, 'echo reply');
  assert.equal(checksum(ic, 0, 40), 0, 'ICMP checksum');
  assert.equal((ic[4]! << 8) | ic[5]!, 0x1234);
  assert.equal((ic[6]! << 8) | ic[7]!, 7);
  assert.deepEqual([...ic.subarray(8, 40)], Array.from({ length: 32 }, (_, i) => i));
  assert.equal(r.stack.stats.icmp_echo_answered, 1);
});

test('IPv4: hostile headers are dropped, each by its own counter, and the stack still answers', () => {
  const r = rig();
  learnPeer(r);
  const echo = icmpEcho(8, 1, 1);
  const cases: [string, Uint8Array][] = [
    ['ip_short', eth(ME, 0x0800, new Uint8Array(10)).slice(0, 14 + 10)],
    ['ip_bad_version', eth(ME, 0x0800, ipv4(1, echo, { version: 6 }))],
    ['ip_bad_ihl', eth(ME, 0x0800, ipv4(1, echo, { ihl: 4 }))],
    ['ip_bad_ihl', eth(ME, 0x0800, ipv4(1, echo, { ihl: 15 }).slice(0, 40))],
    ['ip_bad_length', eth(ME, 0x0800, ipv4(1, echo, { total: 19 }))],
    ['ip_bad_length', eth(ME, 0x0800, ipv4(1, echo, { total: 1400 }))],
    ['ip_bad_checksum', eth(ME, 0x0800, ipv4(1, echo, { badSum: true }))],
    ['ip_fragment', eth(ME, 0x0800, ipv4(1, echo, { frag: 0x2000 }))],
    ['ip_fragment', eth(ME, 0x0800, ipv4(1, echo, { frag: 0x0010 }))],
    ['ip_ttl_zero', eth(ME, 0x0800, ipv4(1, echo, { ttl: 0 }))],
    ['ip_not_for_us', eth(ME, 0x0800, ipv4(1, echo, { dst: [10, 0, 0, 3] }))],
    ['ip_bad_source', eth(ME, 0x0800, ipv4(1, echo, { src: [255, 255, 255, 255] }))],
    ['ip_bad_source', eth(ME, 0x0800, ipv4(1, echo, { src: [224, 0, 0, 1] }))],
    ['ip_unknown_proto', eth(ME, 0x0800, ipv4(99, echo))],
    ['icmp_short', eth(ME, 0x0800, ipv4(1, new Uint8Array(4)))],
    ['icmp_bad_checksum', eth(ME, 0x0800, ipv4(1, icmpEcho(8, 1, 1, 32, true)))],
    ['icmp_other_type', eth(ME, 0x0800, ipv4(1, icmpEcho(13, 1, 1)))],
    ['icmp_unmatched_reply', eth(ME, 0x0800, ipv4(1, icmpEcho(0, 1, 1)))],
    ['icmp_broadcast_ignored', eth(ME, 0x0800, ipv4(1, echo, { dst: [10, 0, 0, 255] }))],
    ['eth_short', new Uint8Array(10)],
    ['eth_not_for_us', eth([2, 0, 0, 0, 0, 9], 0x0800, ipv4(1, echo))],
    ['eth_unknown_type', eth(ME, 0x86dd, new Uint8Array(40))],
  ];
  for (const [counter, frame] of cases) {
    const before = r.stack.stats[counter as 'ip_short'];
    r.input(frame);
    assert.equal(r.stack.stats[counter as 'ip_short'], before + 1, `${counter} moved`);
  }
  assert.equal(r.sent.length, 0, 'nothing answered a hostile packet');
  assert.equal(inputBalance(r.stack.stats), 0, 'every frame in is delivered or counted once');
  r.input(eth(ME, 0x0800, ipv4(1, echo)));
  assert.equal(r.sent.length, 1, 'still answers a good echo request');
});

test('IPv4: Ethernet padding after the packet is fine (total length < frame)', () => {
  const r = rig();
  learnPeer(r);
  const f = eth(ME, 0x0800, ipv4(1, icmpEcho(8, 1, 1, 0))); // 28-byte packet in a 60-byte frame
  r.input(f);
  assert.equal(r.stack.stats.icmp_echo_answered, 1);
});

test('UDP: node:dgram-shaped sockets; checksums checked; bad lengths and unbound ports counted', async () => {
  const r = rig();
  learnPeer(r);
  const got: [string, { address: string; port: number; size: number }][] = [];
  const sock = r.stack.createSocket('udp4');
  sock.on('message', (m: Buffer, rinfo: { address: string; port: number; size: number }) => got.push([m.toString(), rinfo]));
  await new Promise<void>((res) => sock.bind(7, res));
  assert.deepEqual(sock.address(), { address: '10.0.0.2', family: 'IPv4', port: 7 });
  const data = new TextEncoder().encode('hello');
  r.input(eth(ME, 0x0800, ipv4(17, udp(5000, 7, data))));
  r.input(eth(ME, 0x0800, ipv4(17, udp(5000, 7, data, { noSum: true }))));
  r.input(eth(ME, 0x0800, ipv4(17, udp(5000, 7, data, { badSum: true }))));
  r.input(eth(ME, 0x0800, ipv4(17, udp(5000, 7, data, { len: 7 }))));
  r.input(eth(ME, 0x0800, ipv4(17, udp(5000, 7, data, { len: 200 }))));
  r.input(eth(ME, 0x0800, ipv4(17, new Uint8Array(5))));
  r.input(eth(ME, 0x0800, ipv4(17, udp(5000, 8, data))));
  const s = r.stack.stats;
  assert.equal(got.length, 2);
  assert.deepEqual(got[0], ['hello', { address: '10.0.0.1', family: 'IPv4', port: 5000, size: 5 }]);
  assert.equal(s.udp_bad_checksum, 1);
  assert.equal(s.udp_bad_length, 2);
  assert.equal(s.udp_short, 1);
  assert.equal(s.udp_no_socket, 1);
  assert.equal(inputBalance(s), 0);
  // reply: a datagram with a checksum that verifies with the pseudo-header
  const err = await new Promise<Error | null>((res) => sock.send('pong', 5000, '10.0.0.1', (e: Error | null) => res(e)));
  assert.equal(err, null);
  const f = r.sent.at(-1)!;
  const ip = f.subarray(14);
  const u = ip.subarray(20, 20 + 12);
  const pseudo = (10 << 8) + 2 + (10 << 8) + 1 + 17 + 12;
  assert.equal(finish(partialSum(u, 0, 12, pseudo)), 0, 'UDP checksum verifies');
  assert.equal(new TextDecoder().decode(u.subarray(8)), 'pong');
  assert.throws(() => r.stack.createSocket().bind(7), /EADDRINUSE/);
});

test('output: too big, no route and a full ring are counted and reported to the sender', async () => {
  const r = rig({ ringFull: true });
  const sock = r.stack.createSocket();
  const send = (data: Uint8Array, addr: string) => new Promise<Error | null>((res) => sock.send(data, 9, addr, (e: Error | null) => res(e)));
  assert.match(String(await send(new Uint8Array(1473), '10.0.0.1')), /out_too_big/);
  assert.match(String(await send(new Uint8Array(4), '192.0.2.1')), /out_no_route/);
  r.input(arp(1, PEER_IP, ME_IP)); // the reply cannot go out: ring full
  assert.match(String(await send(new Uint8Array(4), '10.0.0.1')), /out_ring_full/);
  assert.equal(r.stack.stats.out_ring_full, 2);
});

test('ping(): resolves with the round trip from the fake clock; null on timeout', async () => {
  const r = rig();
  learnPeer(r);
  const p = r.stack.ping('10.0.0.1', { timeoutMs: 5000 });
  const req = r.sent.at(-1)!;
  const ic = req.subarray(34, 34 + 64);
  assert.equal(ic[0], 8);
  assert.equal(checksum(ic, 0, 64), 0);
  r.advance(3);
  const reply = icmpEcho(0, (ic[4]! << 8) | ic[5]!, (ic[6]! << 8) | ic[7]!, 56);
  r.input(eth(ME, 0x0800, ipv4(1, reply)));
  assert.equal(await p, 3);
  assert.equal(await r.stack.ping('10.0.0.1', { timeoutMs: 10 }), null);
});
