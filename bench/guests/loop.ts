/**
 * Throughput guest that owns two VIFs and sends from one to the other through the device, in one
 * thread: each loop iteration sends up to `batch` frames on the first VIF (zero-copy batch API)
 * and then receives and releases what arrived on the second. The device switches VIF to VIF
 * exactly as between two guests, but only two threads (this guest and the engine) run, so this
 * shows the device's VIF-to-VIF capacity without three busy threads sharing two cores.
 *
 * args: ctl (control page, see ../common.ts), frameBytes, batch. The "go" message names the MAC
 * of the receiving VIF.
 */
import type { GuestContext } from '../../src/guest/context.js';
import { alignedFor, macBytes, makeFrame, stopRequested } from '../common.js';

export default async function main(ctx: GuestContext): Promise<unknown> {
  const a = await ctx.vif();
  const b = await ctx.vif();
  const ctl = new Int32Array(ctx.args.ctl as SharedArrayBuffer);
  const frameBytes = Number(ctx.args.frameBytes);
  const batch = Number(ctx.args.batch ?? 32);
  const { dst } = await ctx.message<{ dst: string }>();
  const rx = b.mac === dst ? b : a;
  const tx = rx === a ? b : a;
  const frame = alignedFor(makeFrame(frameBytes, macBytes(dst), macBytes(tx.mac)), tx.txOffset(0));
  const txBytes = tx.bytes;
  const rxBytes = rx.bytes;
  let seq = 0;
  let received = 0;
  let check = 0;
  let loops = 0;
  while ((++loops & 0x3ff) !== 0 || !stopRequested(ctl)) {
    let n = 0;
    for (; n < batch; n++) {
      const slot = tx.reserveTx();
      if (slot < 0) break;
      const off = tx.txOffset(slot);
      txBytes.set(frame, off);
      txBytes[off + 14] = seq++;
      tx.commitTx(slot, frameBytes);
    }
    if (n !== 0) tx.flush();
    const m = rx.receive(64);
    if (m !== 0) {
      for (let i = 0; i < m; i++) check ^= rxBytes[rx.frameOffset(i) + 14]!;
      received += m;
      rx.release();
    }
  }
  return { sent: tx.stats.sent, received, check };
}
