/**
 * The VXLAN uplink's thread (a worker with its own event loop): Node's UDP sockets on one side, the
 * engines' uplink rings on the other. Engines never wait for it and it never touches a VIF.
 *
 * Toward the network: take frames from the toUplink rings, add the RFC 7348 header, send each to
 * the learned VTEP of its destination MAC or, for unknown, broadcast and multicast destinations, to
 * every static remote VTEP of its VNI. The UDP source port comes from a hash of the inner flow
 * (RFC 7348, 5): one of `sourcePorts` sockets bound to ports in 49152-65535 (a UDP socket cannot
 * pick its source port per datagram). Send buffers come from a fixed pool and go back to it in the
 * send callback; when the pool is empty, frames wait in the ring (backpressure, then the engines
 * count uplink_tx_full).
 * From the network: the socket bound to the VXLAN port receives datagrams, checks them
 * (vxlan-codec.ts), learns the inner source MAC against the outer source address and puts the inner
 * frame into an engine's ring with the VNI's segment. Every drop moves a named counter.
 */
import { createSocket, type Socket } from 'node:dgram';
import { parentPort, workerData } from 'node:worker_threads';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { FrameRing } from '../layout/frame-ring.js';
import { W } from '../layout/doorbell.js';
import { counterIndex } from '../layout/uplink-counters.js';
import { MAX_SEGMENT } from '../device/switch.js';
import { PcapWriter } from '../capture/pcap.js';
import {
  VXLAN_COUNTERS, VXLAN_HEADER, PARSE_SHORT, PARSE_BAD_FLAGS, flowHash, outerBytes, parseVxlan, writeVxlanHeader,
  SOURCE_PORT_MIN, SOURCE_PORT_MAX,
} from './vxlan-codec.js';
import { VtepTable, LEARN_NEW, LEARN_MOVED, LEARN_FULL } from './vxlan-fdb.js';
import { UplinkPort } from './uplink-port.js';
import type { UplinkRings } from './rings.js';

export interface VxlanWorkerData {
  rings: UplinkRings;
  counters: SharedArrayBuffer;
  local: string;
  port: number;
  dstPort: number;
  ipv6: boolean;
  pathMtu: number;
  ageingMs: number;
  maxLearned: number;
  learn: boolean;
  sourcePorts: number;
  batch: number;
  vnis: { vni: number; segment: number; remotes: string[] }[];
}

export type VxlanCommand =
  | { op: 'fdb' }
  | { op: 'capture'; path: string | null; mode: 'inner' | 'outer' }
  | { op: 'stop' };

const wd = workerData as VxlanWorkerData;
const port = parentPort!;
const c = new Float64Array(wd.counters);
const C = counterIndex(VXLAN_COUNTERS);
const up = new UplinkPort(wd.rings);
const table = new VtepTable(wd.ageingMs, wd.maxLearned);
const segToVni = new Int32Array(MAX_SEGMENT + 1).fill(-1);
const vniToSeg = new Map<number, number>();
for (const v of wd.vnis) {
  table.addVni(v.vni, v.remotes);
  segToVni[v.segment] = v.vni;
  vniToSeg.set(v.vni, v.segment);
}
const type = wd.ipv6 ? 'udp6' : 'udp4';
// IP literals only (validated by the control plane): skip dns.lookup and its nextTick per datagram.
const lookup = (address: string, _opts: unknown, cb: (err: Error | null, address: string, family: number) => void): void =>
  cb(null, address, wd.ipv6 ? 6 : 4);
let capture: { w: PcapWriter; outer: boolean } | null = null;
let running = true;

// ---- send buffers ------------------------------------------------------------------------------

interface SendBuf {
  buf: Buffer;
  refs: number;
  done: (err: Error | null) => void;
}
const POOL = 256;
const free: SendBuf[] = [];
let poolWaiter: (() => void) | null = null;
for (let i = 0; i < POOL; i++) {
  const sb: SendBuf = { buf: Buffer.alloc(VXLAN_HEADER + 14 + 4 + 9000), refs: 0, done: () => {} };
  sb.done = (err) => {
    if (err) c[C.tx_send_errors] += 1;
    if (--sb.refs === 0) {
      free.push(sb);
      if (poolWaiter) {
        const w = poolWaiter;
        poolWaiter = null;
        w();
      }
    }
  };
  free.push(sb);
}

// ---- sockets -------------------------------------------------------------------------------------

function bind(s: Socket, p: number, addr: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onErr = (e: Error): void => reject(e);
    s.once('error', onErr);
    s.bind({ port: p, address: addr, exclusive: true }, () => {
      s.off('error', onErr);
      resolve();
    });
  });
}

async function openSockets(): Promise<{ rx: Socket; tx: Socket[]; txPorts: number[] }> {
  const rx = createSocket({ type, lookup: lookup as never });
  await bind(rx, wd.port, wd.local);
  const tx: Socket[] = [];
  const txPorts: number[] = [];
  let tries = 0;
  while (tx.length < wd.sourcePorts && tries++ < 64 * wd.sourcePorts) {
    const p = SOURCE_PORT_MIN + Math.floor(Math.random() * (SOURCE_PORT_MAX - SOURCE_PORT_MIN + 1));
    if (p === wd.port || txPorts.includes(p)) continue;
    const s = createSocket({ type, lookup: lookup as never });
    try {
      await bind(s, p, wd.local);
    } catch {
      s.close();
      continue;
    }
    s.on('message', () => (c[C.rx_other_port] += 1)); // VTEPs send to the VXLAN port, not to these
    s.on('error', () => (c[C.tx_send_errors] += 1));
    tx.push(s);
    txPorts.push(p);
  }
  if (tx.length === 0) throw new Error(`could not bind any UDP source port in ${SOURCE_PORT_MIN}-${SOURCE_PORT_MAX}`);
  return { rx, tx, txPorts };
}

// ---- from the network ----------------------------------------------------------------------------

const maxInner = Math.min(up.fromUplink[0]!.maxFrame, 14 + 4 + 9000);

function fromNetwork(msg: Buffer, addr: string, srcPort: number): void {
  const len = msg.length;
  c[C.rx_packets] += 1;
  c[C.rx_bytes] += len;
  if (capture !== null && capture.outer) capture.w.writeUdp(addr, srcPort, wd.local, wd.port, msg, 0, len);
  const vni = parseVxlan(msg, len);
  if (vni < 0) {
    c[vni === PARSE_SHORT ? C.rx_short : vni === PARSE_BAD_FLAGS ? C.rx_bad_flags : C.rx_inner_short] += 1;
    return;
  }
  const segment = vniToSeg.get(vni);
  if (segment === undefined) {
    c[C.rx_unknown_vni] += 1;
    return;
  }
  const inner = len - VXLAN_HEADER;
  if (inner > maxInner) {
    c[C.rx_oversize] += 1;
    return;
  }
  if (wd.learn) {
    const r = table.learn(vni, msg, VXLAN_HEADER + 6, addr, performance.now());
    if (r === LEARN_NEW) c[C.learned] += 1;
    else if (r === LEARN_MOVED) c[C.learn_moved] += 1;
    else if (r === LEARN_FULL) c[C.learn_full] += 1;
  }
  if (!up.produce(up.pickEngine(msg, VXLAN_HEADER), msg, VXLAN_HEADER, inner, segment)) {
    c[C.rx_ring_full] += 1;
    return;
  }
  c[C.rx_frames] += 1;
  if (capture !== null && !capture.outer) capture.w.write(msg, VXLAN_HEADER, inner);
  up.publish();
}

// ---- toward the network --------------------------------------------------------------------------

let txSockets: Socket[] = [];
let txPorts: number[] = [];

function sendOne(sb: SendBuf, len: number, sock: number, addr: string): void {
  sb.refs++;
  c[C.tx_packets] += 1;
  if (capture !== null && capture.outer) capture.w.writeUdp(wd.local, txPorts[sock]!, addr, wd.dstPort, sb.buf, 0, len);
  try {
    txSockets[sock]!.send(sb.buf, 0, len, wd.dstPort, addr, sb.done);
  } catch {
    sb.done(new Error('send threw')); // e.g. the socket closed under us at stop: counted, never thrown
  }
}

/** Encapsulate and send up to `batch` frames from each ring; returns frames taken. */
function toNetwork(): number {
  let work = 0;
  const now = performance.now();
  for (let e = 0; e < up.toUplink.length; e++) {
    const r = up.toUplink[e]!;
    const rb = up.toUplinkBuf[e]!;
    let n = 0;
    for (let s = r.peek(); s >= 0 && n < wd.batch; s = r.peek()) {
      if (free.length === 0) break; // backpressure: the frame stays in the ring
      const len = FrameRing.len(r, s);
      const data = FrameRing.data(s);
      const vni = segToVni[FrameRing.meta(r, s) & MAX_SEGMENT]!;
      if (len < 14 || len > r.maxFrame) c[C.tx_bad_len] += 1;
      else if (vni < 0) c[C.tx_no_vni] += 1;
      else if (outerBytes(len, wd.ipv6) > wd.pathMtu) c[C.tx_oversize] += 1;
      else {
        const learned = (rb[data]! & 1) === 0 ? table.lookup(vni, rb, data, now) : null;
        const remotes = table.floodList(vni);
        if (learned === null && remotes.length === 0) c[C.tx_no_remote] += 1;
        else {
          const sb = free.pop()!;
          writeVxlanHeader(sb.buf, 0, vni);
          rb.copy(sb.buf, VXLAN_HEADER, data, data + len);
          const sock = flowHash(rb, data, len) % txSockets.length;
          sb.refs = 1; // held until every send of this frame was issued
          if (learned !== null) {
            sendOne(sb, VXLAN_HEADER + len, sock, learned);
            c[C.tx_unicast_learned] += 1;
          } else {
            for (let i = 0; i < remotes.length; i++) sendOne(sb, VXLAN_HEADER + len, sock, remotes[i]!);
            c[C.tx_flooded] += 1;
          }
          sb.done(null);
          c[C.tx_frames] += 1;
          c[C.tx_bytes] += len;
          if (capture !== null && !capture.outer) capture.w.write(rb, data, len);
        }
      }
      r.advance();
      n++;
    }
    if (n !== 0) r.release();
    work += n;
  }
  return work;
}

async function txLoop(): Promise<void> {
  while (running) {
    const n = toNetwork();
    if (free.length === 0) await new Promise<void>((resolve) => (poolWaiter = resolve));
    else if (n === 0) await up.sleep(1000);
    else await yieldToLoop(); // let received datagrams and send callbacks run
  }
}

// ---- control -------------------------------------------------------------------------------------

async function main(): Promise<void> {
  let socks: Awaited<ReturnType<typeof openSockets>>;
  try {
    socks = await openSockets();
  } catch (e) {
    port.postMessage({ type: 'error', message: (e as Error).message, code: (e as NodeJS.ErrnoException).code });
    return;
  }
  txSockets = socks.tx;
  txPorts = socks.txPorts;
  socks.rx.on('message', (msg, rinfo) => fromNetwork(msg, rinfo.address, rinfo.port));
  socks.rx.on('error', () => {});
  const ager = setInterval(() => (c[C.aged_out] += table.age(performance.now())), Math.max(100, Math.min(10_000, wd.ageingMs / 4)));
  const flusher = setInterval(() => capture?.w.flush(), 200);
  port.on('message', (m: VxlanCommand & { id: number }) => {
    if (m.op === 'fdb') port.postMessage({ type: 'reply', id: m.id, fdb: table.entries(performance.now()) });
    else if (m.op === 'capture') {
      capture?.w.close();
      capture = null;
      try {
        if (m.path !== null) capture = { w: PcapWriter.open(m.path), outer: m.mode === 'outer' };
        port.postMessage({ type: 'reply', id: m.id });
      } catch (e) {
        port.postMessage({ type: 'reply', id: m.id, error: (e as Error).message });
      }
    } else if (m.op === 'stop') {
      running = false;
      clearInterval(ager);
      clearInterval(flusher);
      capture?.w.close();
      socks.rx.close();
      for (const s of txSockets) s.close();
      Atomics.add(up.page, W.WAKE, 1); // end a pending sleep
      Atomics.notify(up.page, W.WAKE);
      if (poolWaiter) poolWaiter();
      port.postMessage({ type: 'reply', id: m.id });
      port.close();
    }
  });
  port.postMessage({ type: 'ready', sourcePorts: txPorts });
  await txLoop();
}

void main();
