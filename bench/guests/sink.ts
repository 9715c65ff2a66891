/**
 * Throughput guest: receive frames as fast as they arrive, busy-polling, reading each in place
 * (length and one payload byte) and giving buffers back once per batch.
 *
 * With `spinUs` set, an idle receiver polls that long and then sleeps in nic.waitSync() until the
 * device interrupts (on a machine with fewer cores than busy threads this gives its core away).
 *
 * args: ctl (control page, see ../common.ts), batch, spinUs (default: poll forever).
 */
import type { GuestContext } from '../../src/guest/context.js';
import { stopRequested } from '../common.js';

export default async function main(ctx: GuestContext): Promise<unknown> {
  const nic = await ctx.vif();
  const ctl = new Int32Array(ctx.args.ctl as SharedArrayBuffer);
  const batch = Number(ctx.args.batch ?? 64);
  const spinUs = ctx.args.spinUs === undefined ? Infinity : Number(ctx.args.spinUs);
  let idleFrom = -1;
  let sleeps = 0;
  const bytes = nic.bytes;
  let frames = 0;
  let octets = 0;
  let check = 0;
  let loops = 0;
  while ((++loops & 0x3ff) !== 0 || !stopRequested(ctl)) {
    const n = nic.receive(batch);
    if (n === 0) {
      if (spinUs === Infinity) continue;
      const now = performance.now();
      if (idleFrom < 0) idleFrom = now;
      if ((now - idleFrom) * 1000 < spinUs) continue;
      sleeps++;
      nic.waitSync(10);
      idleFrom = -1;
      continue;
    }
    idleFrom = -1;
    for (let i = 0; i < n; i++) {
      octets += nic.frameLength(i);
      check ^= bytes[nic.frameOffset(i) + 14]!;
    }
    frames += n;
    nic.release();
  }
  return { frames, bytes: octets, check, sleeps };
}
