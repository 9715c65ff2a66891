/**
 * Latency guest: send one frame, wait for its answer, record the round trip (performance.now(),
 * inside the guest), repeat. Waiting follows `spinUs`: poll the receive queue for up to spinUs
 * microseconds, then sleep in nic.waitSync() until the device interrupts; spinUs 0 sleeps at once.
 * After warm-up it measures for `durationMs`, then reports percentiles with ctx.report().
 *
 * A frame carries a 32-bit sequence number at payload offset 0; answers with another number (a
 * late answer to a ping declared lost) are dropped. A ping unanswered for LOSS_MS is counted lost.
 *
 * With `loop` the guest owns two VIFs and is its own peer: it sends on one to the other's MAC and
 * waits on the other (guest -> device -> same guest: only two threads on the path).
 *
 * args: spinUs, warmupMs, durationMs, frameBytes, loop. The "go" message names the peer's MAC.
 */
import type { GuestContext } from '../../src/guest/context.js';
import { RttRecorder, alignedFor, macBytes, makeFrame } from '../common.js';

const LOSS_MS = 200;

export default async function main(ctx: GuestContext): Promise<unknown> {
  const first = await ctx.vif();
  const second = ctx.args.loop ? await ctx.vif() : null;
  const spinUs = Number(ctx.args.spinUs ?? 0);
  const warmupMs = Number(ctx.args.warmupMs ?? 200);
  const durationMs = Number(ctx.args.durationMs ?? 1000);
  const frameBytes = Number(ctx.args.frameBytes ?? 64);
  const { dst } = await ctx.message<{ dst: string }>();
  const nic = second !== null && first.mac === dst ? second : first; // sends
  const rxNic = second === null ? first : nic === first ? second : first; // receives
  const frame = alignedFor(makeFrame(frameBytes, macBytes(dst), macBytes(nic.mac)), nic.txOffset(0));
  const bytes = nic.bytes;
  const rxBytes = rxNic.bytes;
  const rec = new RttRecorder();
  let seq = 0;
  let spun = 0;
  let slept = 0;

  /** Wait for the answer to `want`; true if it came, false after LOSS_MS. */
  const answer = (want: number, t0: number): boolean => {
    let spinFrom = -1;
    for (;;) {
      const n = rxNic.receive(1);
      if (n !== 0) {
        const off = rxNic.frameOffset(0) + 14;
        const got = (rxBytes[off]! | (rxBytes[off + 1]! << 8) | (rxBytes[off + 2]! << 16) | (rxBytes[off + 3]! << 24)) >>> 0;
        rxNic.release();
        if (got === want) return true;
        continue;
      }
      const now = performance.now();
      if (spinUs > 0) {
        if (spinFrom < 0) spinFrom = now;
        if ((now - spinFrom) * 1000 < spinUs) {
          spun++;
          continue;
        }
      }
      if (now - t0 > LOSS_MS) return false;
      slept++;
      rxNic.waitSync(LOSS_MS);
      spinFrom = -1;
    }
  };

  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  for (;;) {
    const t0 = performance.now();
    if (t0 >= end) break;
    const slot = nic.reserveTx();
    if (slot < 0) throw new Error('pinger: transmit ring full with one frame in flight');
    const off = nic.txOffset(slot);
    bytes.set(frame, off);
    const s = seq >>> 0;
    bytes[off + 14] = s & 0xff;
    bytes[off + 15] = (s >>> 8) & 0xff;
    bytes[off + 16] = (s >>> 16) & 0xff;
    bytes[off + 17] = s >>> 24;
    nic.commitTx(slot, frameBytes);
    nic.flush();
    const ok = answer(s, t0);
    const t1 = performance.now();
    seq++;
    if (t0 < measureFrom) continue;
    if (ok) rec.add((t1 - t0) * 1000);
    else rec.lost++;
  }
  const summary = { ...rec.summary(end - measureFrom), pings: seq, spun, slept };
  ctx.report({ kind: 'rtt', ...summary });
  return summary;
}
