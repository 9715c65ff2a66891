/**
 * A minimal svnic guest: wait for a VIF, broadcast a greeting, then answer every greeting it hears
 * until it has heard `expect` of them. Run it with examples/hello.ts (or `svnic run`).
 *
 * The programming model: the module's default export runs in its own worker thread (an isolate),
 * and can touch only the memory of the VIFs the hypervisor grants it.
 */
import type { GuestContext } from '../src/guest/context.js';
import { ethernetFrame, BROADCAST, ETHERTYPE_EXPERIMENTAL } from '../src/guest/ethernet.js';

export default async function main(ctx: GuestContext): Promise<{ heard: string[] }> {
  const nic = await ctx.vif(); // the first VIF granted to this guest
  const expect = Number(ctx.args.expect ?? 1);
  const text = new TextEncoder().encode(`hello from ${ctx.id}`);
  await ctx.message(); // the hypervisor says "go" once every guest has its VIF
  nic.send(ethernetFrame(BROADCAST, nic.mac, ETHERTYPE_EXPERIMENTAL, text));
  const heard: string[] = [];
  for await (const frame of nic) {
    // `frame` is a zero-copy view into this guest's receive buffer, valid for this iteration only.
    if (frame[12] !== 0x88 || frame[13] !== 0xb5) continue;
    heard.push(new TextDecoder().decode(frame.subarray(14)).replace(/\0+$/, ''));
    if (heard.length >= expect) break;
  }
  return { heard };
}
