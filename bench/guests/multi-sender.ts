/**
 * QoS benchmark guest: one thread that owns several VIFs and sends on all of them, so that N
 * contending VIFs cost one guest thread (the machine has 2 cores). Per VIF it sends `frameBytes`
 * frames to `dst`, either as fast as the ring takes them (`perSec` 0: the VIF saturates) or paced
 * at `perSec` frames per second (the offered load). A frame the ring has no room for is counted in
 * `refused` (backpressure from the device): it is not queued and not sent.
 *
 * With `napUs`, a loop that could queue nothing on any VIF sleeps that long (nic.waitSync) instead
 * of polling on: on a 2-core machine this leaves the core to the device engine, while rings that
 * hold tens of milliseconds of traffic at the measured rates stay full.
 *
 * args: ctl (control page, ../common.ts), vifs: [{ dst, frameBytes, perSec }] in the order the
 * VIFs are plugged, napUs (default 0: never sleep). Returns { sent[], refused[], naps }.
 */
import type { GuestContext } from '../../src/guest/context.js';
import type { VirtioNetDriver } from '../../src/guest/driver.js';
import { alignedFor, macBytes, makeFrame, stopRequested } from '../common.js';

interface Flow {
  dst: string;
  frameBytes: number;
  perSec: number;
}

export default async function main(ctx: GuestContext): Promise<unknown> {
  const ctl = new Int32Array(ctx.args.ctl as SharedArrayBuffer);
  const flows = ctx.args.vifs as Flow[];
  const napMs = Number(ctx.args.napUs ?? 0) / 1000;
  let naps = 0;
  const nics: VirtioNetDriver[] = [];
  for (let i = 0; i < flows.length; i++) nics.push(await ctx.vif());
  await ctx.message();
  const frames = nics.map((nic, i) => alignedFor(makeFrame(flows[i]!.frameBytes, macBytes(flows[i]!.dst), macBytes(nic.mac)), nic.txOffset(0)));
  const sent = flows.map(() => 0);
  const refused = flows.map(() => 0);
  const t0 = performance.now();
  const credit = flows.map(() => 0);
  let last = t0;
  let loops = 0;
  while ((++loops & 0xff) !== 0 || !stopRequested(ctl)) {
    const now = performance.now();
    const dt = now - last;
    last = now;
    let queued = 0;
    for (let i = 0; i < nics.length; i++) {
      const nic = nics[i]!;
      const f = flows[i]!;
      // received frames (echoes) are given back at once
      if (nic.receive(256) !== 0) nic.release();
      let want = 64;
      if (f.perSec > 0) {
        credit[i]! += (dt * f.perSec) / 1000;
        if (credit[i]! > 1024) credit[i] = 1024; // at most 1024 frames behind
        want = Math.floor(credit[i]!);
        if (want === 0) continue;
      }
      let n = 0;
      for (; n < want; n++) {
        const slot = nic.reserveTx();
        if (slot < 0) break;
        nic.bytes.set(frames[i]!, nic.txOffset(slot));
        nic.commitTx(slot, f.frameBytes);
      }
      if (n !== 0) nic.flush();
      queued += n;
      sent[i]! += n;
      if (f.perSec > 0) {
        refused[i]! += want - n; // offered but the ring was full: held back by the device
        credit[i]! -= want;
      }
    }
    if (queued === 0 && napMs > 0) {
      naps++;
      nics[0]!.waitSync(napMs);
    }
  }
  return { sent, refused, naps, seconds: (performance.now() - t0) / 1000 };
}
