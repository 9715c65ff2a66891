/**
 * Test guest for path comparisons: sends numbered frames on command and records every frame it
 * receives as "srcMac/seq/len". Frames carry ethertype 0x88b5 and a u32 sequence number after the
 * Ethernet header. Sends are paced (a batch, then until the device or netback took it, then a
 * timer tick) so that nothing downstream overflows: the test compares deliveries, not speed.
 *   { cmd: 'send', dst, count, first, bytes }  -> report { kind: 'sent', sent }
 *   { cmd: 'collect' }                         -> report { kind: 'got', got: string[] }
 *   { cmd: 'exit' }
 */
import type { GuestContext } from '../../src/guest/context.js';
import { formatMac, parseMac } from '../../src/device/mac-table.js';

export default async function main(ctx: GuestContext): Promise<void> {
  const nic = await ctx.vif();
  const src = parseMac(nic.mac)!;
  const got: string[] = [];
  let running = true;
  const rx = (async () => {
    while (running) {
      const n = nic.receive();
      if (n === 0) {
        await nic.wait(5);
        continue;
      }
      for (let i = 0; i < n; i++) {
        const o = nic.frameOffset(i);
        const seq = new DataView(nic.bytes.buffer, o + 14, 4).getUint32(0);
        got.push(`${formatMac(nic.bytes, o + 6)}/${seq}/${nic.frameLength(i)}`);
      }
      nic.release();
    }
  })();
  for (;;) {
    const m = await ctx.message<{ cmd: string; dst?: string; count?: number; first?: number; bytes?: number }>();
    if (m.cmd === 'send') {
      const dst = parseMac(m.dst!)!;
      const bytes = m.bytes ?? 64;
      let sent = 0;
      while (sent < m.count!) {
        for (let k = 0; k < 16 && sent < m.count!; k++) {
          const slot = nic.reserveTx();
          if (slot < 0) break;
          const o = nic.txOffset(slot);
          nic.bytes.fill(0, o, o + bytes);
          nic.bytes.set(dst, o);
          nic.bytes.set(src, o + 6);
          nic.bytes[o + 12] = 0x88;
          nic.bytes[o + 13] = 0xb5;
          new DataView(nic.bytes.buffer, o + 14, 4).setUint32(0, m.first! + sent);
          nic.commitTx(slot, bytes);
          sent++;
        }
        nic.flush();
        for (let spins = 0; nic.txInFlight !== 0 && spins < 200; spins++) await new Promise((r) => setTimeout(r, 1));
        await new Promise((r) => setTimeout(r, 1));
      }
      ctx.report({ kind: 'sent', sent });
    } else if (m.cmd === 'collect') {
      ctx.report({ kind: 'got', got: [...got] });
    } else {
      running = false;
      await rx;
      return;
    }
  }
}
