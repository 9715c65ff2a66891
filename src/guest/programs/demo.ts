/**
 * The guest program behind `svnic demo`. It receives all the time (counting frames by kind) and
 * runs phases the hypervisor sends it with guest.send():
 *   { phase: 'unicast', peers, frames }  send `frames` frames to each peer MAC
 *   { phase: 'broadcast', frames }       send `frames` broadcast frames
 *   { phase: 'spoof', victim, frames }   send frames that claim the victim's source MAC
 *   { phase: 'ping', peer, count }       busy-poll ping-pong with `peer`; reports RTTs
 *   { phase: 'pong', count }             busy-poll: answer `count` pings
 *   { phase: 'report' }                  report counts
 *   { phase: 'exit' }
 * Payload after the Ethernet header: kind u8 | seq u32 | ...padding. Ethertype 0x88b5.
 */
import type { GuestContext } from '../context.js';
import type { VirtioNetDriver } from '../driver.js';
import { parseMac } from '../../device/mac-table.js';
import { ETHERTYPE_EXPERIMENTAL } from '../ethernet.js';

export const KIND_DATA = 1;
export const KIND_PING = 2;
export const KIND_PONG = 3;
export const KIND_SPOOF = 4;
export const KIND_BCAST = 5;

export type DemoPhase =
  | { phase: 'unicast'; peers: string[]; frames: number }
  | { phase: 'broadcast'; frames: number }
  | { phase: 'spoof'; victim: string; frames: number }
  | { phase: 'ping'; peer: string; count: number }
  | { phase: 'pong'; count: number }
  | { phase: 'report' }
  | { phase: 'exit' };

export interface DemoReport {
  phase: string;
  sent: number;
  received: Record<string, number>;
  txRingFull: number;
  rttUs?: number[];
  elapsedMs?: number;
  /** The driver's own totals: frames committed to the transmit ring, frames received. */
  nicSent: number;
  nicReceived: number;
}

const FRAME = 64;
const seqAt = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const peerMac = new Uint8Array(6);

/** Write one 64-byte frame into the next free transmit buffer; false if the ring is full. */
function put(nic: VirtioNetDriver, dst: Uint8Array, src: Uint8Array, kind: number, seq: number): boolean {
  const slot = nic.reserveTx();
  if (slot < 0) return false;
  const b = nic.bytes;
  const o = nic.txOffset(slot);
  b.set(dst, o);
  b.set(src, o + 6);
  b[o + 12] = ETHERTYPE_EXPERIMENTAL >> 8;
  b[o + 13] = ETHERTYPE_EXPERIMENTAL & 0xff;
  b[o + 14] = kind;
  b[o + 15] = seq >>> 24;
  b[o + 16] = (seq >>> 16) & 0xff;
  b[o + 17] = (seq >>> 8) & 0xff;
  b[o + 18] = seq & 0xff;
  b.fill(0, o + 19, o + FRAME);
  nic.commitTx(slot, FRAME);
  return true;
}

export default async function main(ctx: GuestContext): Promise<void> {
  const nic = await ctx.vif();
  const me = parseMac(nic.mac)!;
  const counts = new Map<number, number>();
  let pendingPings = 0;
  let running = true;

  /** Drain received frames; answer pings. Returns frames handled. */
  const drain = (onPong?: (seq: number) => void): number => {
    const n = nic.receive();
    const b = nic.bytes;
    for (let i = 0; i < n; i++) {
      const o = nic.frameOffset(i);
      if (nic.frameLength(i) < 19 || b[o + 12] !== 0x88 || b[o + 13] !== 0xb5) continue;
      const kind = b[o + 14]!;
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
      if (kind === KIND_PING) {
        // reply to the sender with the same sequence number
        peerMac.set(b.subarray(o + 6, o + 12));
        if (put(nic, peerMac, me, KIND_PONG, seqAt(b, o + 15))) pendingPings++;
      } else if (kind === KIND_PONG && onPong) {
        onPong(seqAt(b, o + 15));
      }
    }
    if (n !== 0) {
      nic.release();
      nic.flush();
    }
    return n;
  };

  const sendAll = async (dsts: Uint8Array[], src: Uint8Array, kind: number, frames: number): Promise<number> => {
    let sent = 0;
    for (let i = 0; i < frames; i++) {
      for (const d of dsts) {
        while (!put(nic, d, src, kind, i)) {
          nic.flush();
          drain();
          await new Promise((r) => setImmediate(r)); // let the device take the ring
        }
        sent++;
      }
      if ((i & 15) === 15) {
        nic.flush();
        drain();
      }
    }
    nic.flush();
    return sent;
  };

  // Background receive loop: runs whenever the program is not in a busy-poll phase.
  const background = (async () => {
    while (running) {
      if (drain() === 0) await nic.wait(20);
    }
  })();

  const report = (phase: string, sent: number, extra: Partial<DemoReport> = {}): void => {
    ctx.report({ phase, sent, received: Object.fromEntries([...counts].map(([k, v]) => [String(k), v])), txRingFull: nic.stats.txRingFull, nicSent: nic.stats.sent, nicReceived: nic.stats.received, ...extra } satisfies DemoReport);
  };

  for (;;) {
    const m = await ctx.message<DemoPhase>();
    const t0 = performance.now();
    switch (m.phase) {
      case 'unicast': {
        const sent = await sendAll(m.peers.map((p) => parseMac(p)!), me, KIND_DATA, m.frames);
        report('unicast', sent, { elapsedMs: performance.now() - t0 });
        break;
      }
      case 'broadcast': {
        const sent = await sendAll([parseMac('ff:ff:ff:ff:ff:ff')!], me, KIND_BCAST, m.frames);
        report('broadcast', sent);
        break;
      }
      case 'spoof': {
        const others = await sendAll([parseMac('ff:ff:ff:ff:ff:ff')!], parseMac(m.victim)!, KIND_SPOOF, m.frames);
        report('spoof', others);
        break;
      }
      case 'ping': {
        const peer = parseMac(m.peer)!;
        const rtt: number[] = [];
        let got = -1;
        for (let seq = 0; seq < m.count; seq++) {
          const start = performance.now();
          while (!put(nic, peer, me, KIND_PING, seq)) drain();
          nic.flush();
          const deadline = start + 1000;
          got = -1;
          while (got !== seq && performance.now() < deadline) drain((s) => (got = s));
          if (got === seq) rtt.push((performance.now() - start) * 1000);
        }
        report('ping', m.count, { rttUs: rtt });
        break;
      }
      case 'pong': {
        // Answer `count` pings (or stop after 10 s: the pinger gave up). The answering side sleeps
        // on its interrupt instead of spinning, so only the pinger and the engine compete for
        // this machine's two cores.
        const until = performance.now() + 10_000;
        const target = pendingPings + m.count;
        while (pendingPings < target && performance.now() < until) if (drain() === 0) nic.waitSync(10);
        report('pong', 0);
        break;
      }
      case 'report':
        drain();
        report('report', 0);
        break;
      case 'exit':
        running = false;
        await background;
        return;
    }
  }
}
