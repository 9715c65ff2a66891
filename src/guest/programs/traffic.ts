/**
 * A long-running guest for the daemon (svnicd) and its tests: it takes every VIF it is granted,
 * for as long as it runs (hot-plug and unplug included), and on each one
 *  - sends `pps` frames per second of `size` bytes to `to` (default: broadcast), paced by a timer
 *    every `tickMs` (no busy-polling: it costs little CPU and leaves room for the device);
 *  - drains its receive queue on every tick (so receive drops only come from real overload).
 * It uses the VIF's current MAC as source on every tick, so a runtime MAC change does not turn its
 * frames into spoofs. It never returns; the daemon stops it by terminating the worker.
 *
 * args: { pps?: number (default 200; 0 = receive only), size?: number (60..1514, default 60),
 *         to?: string (a MAC, default ff:ff:ff:ff:ff:ff), tickMs?: number (default 20) }
 */
import type { GuestContext } from '../context.js';
import type { VirtioNetDriver } from '../driver.js';
import { parseMac } from '../../device/mac-table.js';
import { ETHERTYPE_EXPERIMENTAL } from '../ethernet.js';

const num = (v: unknown, dflt: number, min: number, max: number): number =>
  typeof v === 'number' && Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : dflt;

export default async function main(ctx: GuestContext): Promise<never> {
  const pps = num(ctx.args.pps, 200, 0, 1e7);
  const size = Math.floor(num(ctx.args.size, 60, 60, 1514));
  const tickMs = num(ctx.args.tickMs, 20, 1, 1000);
  const dst = parseMac(typeof ctx.args.to === 'string' ? ctx.args.to : 'ff:ff:ff:ff:ff:ff') ?? new Uint8Array(6).fill(0xff);
  const nics = new Set<VirtioNetDriver>();
  ctx.onUnplug((d) => nics.delete(d));
  let owed = 0;
  setInterval(() => {
    owed += (pps * tickMs) / 1000;
    const burst = Math.floor(owed);
    owed -= burst;
    for (const nic of nics) {
      if (nic.unplugged) continue;
      if (nic.receive() > 0) nic.release();
      const src = parseMac(nic.mac);
      if (!src || burst === 0) continue;
      const len = Math.min(size, nic.maxFrame);
      for (let i = 0; i < burst; i++) {
        const slot = nic.reserveTx();
        if (slot < 0) break;
        const b = nic.bytes;
        const o = nic.txOffset(slot);
        b.set(dst, o);
        b.set(src, o + 6);
        b[o + 12] = ETHERTYPE_EXPERIMENTAL >> 8;
        b[o + 13] = ETHERTYPE_EXPERIMENTAL & 0xff;
        nic.commitTx(slot, len);
      }
      nic.flush();
    }
  }, tickMs);
  for (;;) nics.add(await ctx.vif());
}
