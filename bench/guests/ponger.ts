/**
 * Latency guest: answer every frame at once, to its sender (MACs swapped, payload kept), until
 * the control page says stop. Waiting follows `spinUs` like pinger.ts: poll up to spinUs
 * microseconds, then nic.waitSync(); spinUs 0 sleeps at once.
 *
 * args: ctl (control page, see ../common.ts), spinUs.
 */
import type { GuestContext } from '../../src/guest/context.js';
import { copyBytes } from '../../src/device/copy.js';
import { stopRequested } from '../common.js';

export default async function main(ctx: GuestContext): Promise<unknown> {
  const nic = await ctx.vif();
  const ctl = new Int32Array(ctx.args.ctl as SharedArrayBuffer);
  const spinUs = Number(ctx.args.spinUs ?? 0);
  const bytes = nic.bytes;
  const mac = Uint8Array.from(nic.mac.split(':').map((h) => parseInt(h, 16)));
  let answered = 0;
  let dropped = 0;
  let spinFrom = -1;
  let loops = 0;
  for (;;) {
    const n = nic.receive(32);
    if (n === 0) {
      if ((++loops & 0xff) === 0 && stopRequested(ctl)) break;
      if (spinUs > 0) {
        const now = performance.now();
        if (spinFrom < 0) spinFrom = now;
        if ((now - spinFrom) * 1000 < spinUs) continue;
      }
      if (stopRequested(ctl)) break;
      nic.waitSync(20);
      spinFrom = -1;
      continue;
    }
    spinFrom = -1;
    for (let i = 0; i < n; i++) {
      const slot = nic.reserveTx();
      if (slot < 0) {
        dropped++;
        continue;
      }
      const src = nic.frameOffset(i);
      const len = nic.frameLength(i);
      const dst = nic.txOffset(slot);
      copyBytes(bytes, dst, bytes, src + 6, 6); // destination = the sender
      copyBytes(bytes, dst + 6, mac, 0, 6); // source = this VIF
      copyBytes(bytes, dst + 12, bytes, src + 12, len - 12);
      nic.commitTx(slot, len);
      answered++;
    }
    nic.release();
    nic.flush();
  }
  return { answered, dropped };
}
