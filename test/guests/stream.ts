/**
 * Test guest: streams 64-byte frames to a destination while always receiving.
 *   { cmd: 'stream', dst }  start streaming (yields to the event loop between batches)
 *   { cmd: 'stop' }         stop streaming and report { sent, received, unplugged }
 *   { cmd: 'report' }       report without stopping
 *   { cmd: 'exit' }
 */
import type { GuestContext } from '../../src/guest/context.js';
import { parseMac } from '../../src/device/mac-table.js';

export interface StreamReport {
  sent: number;
  received: number;
  unplugged: boolean;
}

export default async function main(ctx: GuestContext): Promise<void> {
  const nic = await ctx.vif();
  const src = parseMac(nic.mac)!;
  let dst: Uint8Array | null = null;
  let running = true;
  const rx = (async () => {
    while (running && !nic.unplugged) {
      const n = nic.receive();
      if (n === 0) await nic.wait(5);
      else nic.release();
    }
  })();
  const tx = async () => {
    while (dst !== null && !nic.unplugged) {
      for (let i = 0; i < 32; i++) {
        const slot = nic.reserveTx();
        if (slot < 0) break;
        const o = nic.txOffset(slot);
        nic.bytes.set(dst, o);
        nic.bytes.set(src, o + 6);
        nic.bytes[o + 12] = 0x88;
        nic.bytes[o + 13] = 0xb5;
        nic.commitTx(slot, 64);
      }
      nic.flush();
      await new Promise((r) => setImmediate(r));
    }
  };
  const report = () => ctx.report({ sent: nic.stats.sent, received: nic.stats.received, unplugged: nic.unplugged } satisfies StreamReport);
  let streaming: Promise<void> = Promise.resolve();
  for (;;) {
    const m = await ctx.message<{ cmd: string; dst?: string }>();
    if (m.cmd === 'stream') {
      dst = parseMac(m.dst!)!;
      streaming = tx();
    } else if (m.cmd === 'stop') {
      dst = null;
      await streaming;
      report();
    } else if (m.cmd === 'report') {
      report();
    } else {
      running = false;
      dst = null;
      await streaming;
      await rx;
      return;
    }
  }
}
