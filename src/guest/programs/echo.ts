/**
 * The built-in guest program `echo` (`module: svnic:echo` in a run config). It gives its first VIF
 * an IPv4 address and runs the guest network stack (guest/net): it answers ARP and ping, and
 * echoes every UDP datagram on port 7 (RFC 862) back to its sender.
 *
 * args: { ip: "10.0.0.2/24", gateway?: "10.0.0.1", port?: 7 }
 * Messages it understands (guest.send()):
 *   "stats" or { stats: true }                reports { stats, arp }
 *   { ping: "10.0.0.1", count?, timeoutMs? }  pings and reports { ping, rttMs: (number|null)[] }
 *   { udp: "10.0.0.1", port, data }           sends one datagram, reports { udp, sent: true|error }
 *   { blast: "10.0.0.1", port, size, durationMs }  sends UDP datagrams of `size` bytes as fast as
 *                                             the transmit ring takes them (for benchmarks),
 *                                             reports { blast, sent, ringFull }
 *   "exit"                                    stops the stack and returns the stats
 * A `tag` field in a message object comes back in its report, to tell replies apart.
 * Any other message (such as the run's start message "go") is ignored.
 * On start it reports { ready: true, ip, mac }.
 */
import type { GuestContext } from '../context.js';
import { startStack } from '../net/nic.js';
import { formatIpv4, parseIpv4 } from '../net/addr.js';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { formatMac } from '../../device/mac-table.js';

export interface EchoArgs {
  ip: string;
  gateway?: string;
  port?: number;
}

export default async function main(ctx: GuestContext): Promise<unknown> {
  const args = ctx.args as unknown as EchoArgs;
  if (typeof args.ip !== 'string') throw new Error('echo: args.ip is required, e.g. args: { ip: 10.0.0.2/24 }');
  const nic = await ctx.vif();
  const run = startStack(nic, { ip: args.ip, gateway: args.gateway });
  const { stack } = run;
  const sock = stack.createSocket('udp4');
  sock.on('message', (msg: Buffer, rinfo: { address: string; port: number }) => sock.send(msg, rinfo.port, rinfo.address));
  sock.on('error', () => {}); // an echo that cannot go out (ring full, no ARP answer) is counted in stack.stats
  sock.bind(args.port ?? 7);
  ctx.report({ ready: true, ip: stack.address, mac: nic.mac });
  const stats = () => ({
    stats: { ...stack.stats },
    arp: stack.arp.snapshot().map((e) => ({ ip: formatIpv4(e.ip), mac: formatMac(e.mac) })),
  });
  for (;;) {
    const m = await Promise.race([ctx.message<unknown>(), run.done.then(() => 'exit' as const)]);
    if (m === 'exit') break;
    const tag = m && typeof m === 'object' && 'tag' in m ? { tag: (m as { tag: unknown }).tag } : {};
    if (m === 'stats' || (m && typeof m === 'object' && 'stats' in m)) ctx.report({ ...stats(), ...tag });
    else if (m && typeof m === 'object' && 'ping' in m) {
      const p = m as { ping: string; count?: number; timeoutMs?: number };
      const rttMs: (number | null)[] = [];
      for (let i = 0; i < (p.count ?? 1); i++) rttMs.push(await stack.ping(p.ping, { timeoutMs: p.timeoutMs ?? 1000 }));
      ctx.report({ ping: p.ping, rttMs, ...tag });
    } else if (m && typeof m === 'object' && 'blast' in m) {
      const b = m as { blast: string; port: number; size: number; durationMs: number };
      const dst = parseIpv4(b.blast);
      if (dst === null) throw new Error(`echo: blast: not an IPv4 address: ${b.blast}`);
      const s = stack.createSocket('udp4').bind(0);
      const src = s.address().port;
      const payload = new Uint8Array(b.size);
      let sent = 0;
      let ringFull = 0;
      const end = performance.now() + b.durationMs;
      while (performance.now() < end) {
        for (let i = 0; i < 64; i++) {
          if (stack.sendUdp(src, dst, b.port, payload) === 'sent') sent++;
          else {
            ringFull++;
            break;
          }
        }
        await yieldToLoop(); // the stack's receive loop and timers run here
      }
      s.close();
      ctx.report({ blast: b.blast, sent, ringFull, ...tag });
    } else if (m && typeof m === 'object' && 'udp' in m) {
      const u = m as { udp: string; port: number; data: string };
      const s = stack.createSocket('udp4');
      const err = await new Promise<Error | null>((resolve) => s.send(u.data, u.port, u.udp, (e: Error | null) => resolve(e)));
      s.close();
      ctx.report({ udp: u.udp, sent: err ? err.message : true, ...tag });
    }
  }
  run.stop();
  sock.close();
  await run.done;
  return stats();
}
