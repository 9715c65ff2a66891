/**
 * `svnic bench paper` peer host: the remote machine of the paper's set-up, a guest on a second
 * device joined to the host's device by a `wire`. It receives everything (batches of up to 1024),
 * counts frames and bytes per sending guest (payload byte 14) into a shared Float64Array, and
 * answers pings (ethertype 0x88b6) at once with MACs swapped. When idle it polls `spinUs`, then
 * sleeps in nic.waitSync() until the device interrupts. It stops when ctl says STOP.
 *
 * args: ctl, stats (Float64Array: [2 * i] frames and [2 * i + 1] bytes from guest i), spinUs.
 * Its first act is a broadcast announcement (as ARP would send), so a learning bridge on the
 * host side knows which port it is on before any measurement.
 */
import type { GuestContext } from '../../src/guest/context.js';
import { copyBytes } from '../../src/device/copy.js';
import { stopRequested } from '../common.js';

export default async function main(ctx: GuestContext): Promise<unknown> {
  const nic = await ctx.vif();
  const ctl = new Int32Array(ctx.args.ctl as SharedArrayBuffer);
  const stats = new Float64Array(ctx.args.stats as SharedArrayBuffer);
  const spinUs = Number(ctx.args.spinUs ?? 50);
  const bytes = nic.bytes;
  const mac = Uint8Array.from(nic.mac.split(':').map((h) => parseInt(h, 16)));
  await ctx.message(); // "announce"
  const hello = new Uint8Array(60);
  hello.fill(0xff, 0, 6);
  hello.set(mac, 6);
  hello[12] = 0x88;
  hello[13] = 0xb5;
  hello[14] = 0xff;
  nic.send(hello);
  ctx.report({ kind: 'announced' });
  let answered = 0;
  let idleFrom = -1;
  let loops = 0;
  for (;;) {
    const n = nic.receive(1024);
    if (n === 0) {
      if ((++loops & 0xff) === 0 && stopRequested(ctl)) break;
      const now = performance.now();
      if (idleFrom < 0) idleFrom = now;
      if ((now - idleFrom) * 1000 < spinUs) continue;
      if (stopRequested(ctl)) break;
      nic.waitSync(20);
      idleFrom = -1;
      continue;
    }
    idleFrom = -1;
    let replies = 0;
    for (let i = 0; i < n; i++) {
      const src = nic.frameOffset(i);
      const len = nic.frameLength(i);
      const g = bytes[src + 14]!;
      stats[2 * g] += 1;
      stats[2 * g + 1] += len;
      if (bytes[src + 13] !== 0xb6) continue;
      const slot = nic.reserveTx();
      if (slot < 0) continue;
      const dst = nic.txOffset(slot);
      copyBytes(bytes, dst, bytes, src + 6, 6);
      copyBytes(bytes, dst + 6, mac, 0, 6);
      copyBytes(bytes, dst + 12, bytes, src + 12, len - 12);
      nic.commitTx(slot, len);
      replies++;
    }
    nic.release();
    if (replies !== 0) {
      nic.flush();
      answered += replies;
    }
  }
  return { answered };
}
