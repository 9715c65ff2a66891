/**
 * `svnic bench paper` guest: one of the N guests on the host, the same program on both paths (a
 * VIF on the device, or a netif behind the driver domain: it cannot tell). Between trials it waits
 * for a message (its event loop; no CPU). Trials:
 *
 *   { cmd: 'stream', dst, frameBytes, index, ctl }  send frames to the peer host as fast as the path
 *       takes them (zero-copy batch API, batch 32) until ctl says STOP; when the transmit ring is
 *       full for `spinUs` it sleeps until a quarter of the ring is free again (nic.waitTxSync: a
 *       transmit-completion interrupt) instead of polling, so N guests on 2 cores leave the CPU
 *       to the threads that drain their rings.
 *   { cmd: 'ping', dst, frameBytes, warmupMs, durationMs, gapUs, spinUs }  ping-pong with the peer
 *       host at low load: one frame in flight, the next after a pause of gapUs; waits for each
 *       answer polling spinUs, then sleeping in nic.waitSync(). Reports the RTTs (µs, measured in
 *       this thread) of the measured window.
 *
 * Frame payload: byte 14 = this guest's index (the peer counts per guest), byte 15.. = sequence;
 * ethertype 0x88b5 for stream frames, 0x88b6 for pings (the peer answers only those).
 */
import type { GuestContext } from '../../src/guest/context.js';
import { alignedFor, macBytes, makeFrame, stopRequested } from '../common.js';

export const ETHERTYPE_PING_LO = 0xb6;
const LOSS_MS = 200;

interface Stream { cmd: 'stream'; dst: string; frameBytes: number; index: number; ctl: SharedArrayBuffer; spinUs: number }
interface Ping { cmd: 'ping'; dst: string; frameBytes: number; index: number; warmupMs: number; durationMs: number; gapUs: number; spinUs: number }
type Msg = Stream | Ping | { cmd: 'exit' };

export default async function main(ctx: GuestContext): Promise<unknown> {
  const nic = await ctx.vif();
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const m = await ctx.message<Msg>();
    if (m.cmd === 'exit') return { sent: nic.stats.sent };
    if (m.cmd === 'stream') {
      const ctl = new Int32Array(m.ctl);
      const frame = alignedFor(makeFrame(m.frameBytes, macBytes(m.dst), macBytes(nic.mac)), nic.txOffset(0));
      frame[14] = m.index;
      const bytes = nic.bytes;
      let seq = 0;
      let loops = 0;
      let fullFrom = -1;
      const room = Math.max(1, nic.layout.queueSize >> 2);
      while ((++loops & 0xff) !== 0 || !stopRequested(ctl)) {
        let n = 0;
        for (; n < 32; n++) {
          const slot = nic.reserveTx();
          if (slot < 0) break;
          const off = nic.txOffset(slot);
          bytes.set(frame, off);
          bytes[off + 15] = seq++;
          nic.commitTx(slot, m.frameBytes);
        }
        if (n !== 0) {
          nic.flush();
          fullFrom = -1;
          continue;
        }
        // Ring full: sleep until the path has taken a quarter of the ring (a transmit-completion
        // interrupt, nic.waitTxSync) so the threads that drain it get the CPU; spinUs 0 sleeps at once.
        const now = performance.now();
        if (fullFrom < 0) fullFrom = now;
        if ((now - fullFrom) * 1000 >= m.spinUs) {
          nic.waitTxSync(5, room);
          fullFrom = -1;
        }
      }
      // Drain anything that arrived meanwhile (nothing should), so the next trial starts clean.
      while (nic.receive() !== 0) nic.release();
      ctx.report({ kind: 'streamed', sent: nic.stats.sent });
      continue;
    }
    // ping
    const frame = alignedFor(makeFrame(m.frameBytes, macBytes(m.dst), macBytes(nic.mac)), nic.txOffset(0));
    frame[13] = ETHERTYPE_PING_LO;
    frame[14] = m.index;
    const rtts: number[] = [];
    let lost = 0;
    let seq = 0;
    const start = performance.now();
    const measureFrom = start + m.warmupMs;
    const end = measureFrom + m.durationMs;
    const rxBytes = nic.bytes;
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) break;
      const slot = nic.reserveTx();
      if (slot < 0) {
        nic.waitSync(1);
        continue;
      }
      const off = nic.txOffset(slot);
      nic.bytes.set(frame, off);
      const s = seq++ & 0xffff;
      nic.bytes[off + 15] = s & 0xff;
      nic.bytes[off + 16] = s >>> 8;
      nic.commitTx(slot, m.frameBytes);
      nic.flush();
      let ok = false;
      let spinFrom = -1;
      for (;;) {
        const n = nic.receive(1);
        if (n !== 0) {
          const o = nic.frameOffset(0);
          const got = rxBytes[o + 15]! | (rxBytes[o + 16]! << 8);
          nic.release();
          if (got === s) {
            ok = true;
            break;
          }
          continue;
        }
        const now = performance.now();
        if (spinFrom < 0) spinFrom = now;
        if ((now - spinFrom) * 1000 < m.spinUs) continue;
        if (now - t0 > LOSS_MS) break;
        nic.waitSync(LOSS_MS);
        spinFrom = -1;
      }
      const t1 = performance.now();
      if (t0 >= measureFrom) {
        if (ok) rtts.push((t1 - t0) * 1000);
        else lost++;
      }
      if (m.gapUs > 0) Atomics.wait(nap, 0, 0, m.gapUs / 1000);
    }
    ctx.report({ kind: 'pinged', rtts, lost });
  }
}
