/** `svnic demo`: the first thing a newcomer runs (see demo/run-demo.ts). */
import type { Command } from 'commander';
import { runDemo, DEMO_DEFAULTS, type DemoResult } from '../demo/run-demo.js';
import { table } from './table.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('one device, 4 isolate guests and a spoofer: all-to-all, broadcast, ping-pong, anti-spoofing, with counters')
    .option('--json', 'print the result as one JSON object')
    .option('--frames <n>', 'frames each guest sends to each peer in the all-to-all phase', String(DEMO_DEFAULTS.frames))
    .option('--pings <n>', 'ping-pong round trips', String(DEMO_DEFAULTS.pings))
    .option('--engines <n>', 'device engine threads', String(DEMO_DEFAULTS.engines))
    .option('--interrupts <mode>', 'interrupt routing: direct | hypervisor', DEMO_DEFAULTS.interruptMode)
    .option('--spin-us <us>', 'engine busy-poll budget before sleeping', String(DEMO_DEFAULTS.spinUs))
    .action(async (o: { json?: boolean; frames: string; pings: string; engines: string; interrupts: string; spinUs: string }) => {
      if (o.interrupts !== 'direct' && o.interrupts !== 'hypervisor') {
        console.error(`svnic demo: --interrupts must be direct or hypervisor, got "${o.interrupts}"`);
        process.exitCode = 2;
        return;
      }
      const log = o.json ? () => {} : (s: string) => console.log(s);
      const r = await runDemo({
        ...DEMO_DEFAULTS, frames: posInt(o.frames, '--frames'), pings: posInt(o.pings, '--pings'),
        engines: posInt(o.engines, '--engines'), interruptMode: o.interrupts, spinUs: Number(o.spinUs),
      }, log);
      if (o.json) console.log(JSON.stringify(r, null, 2));
      else print(r);
      if (r.unaccounted !== 0) process.exitCode = 1;
    });
}

function posInt(s: string, name: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${s}"`);
  return n;
}

function print(r: DemoResult): void {
  console.log();
  console.log(table(
    ['vif', 'guest', 'mac', 'sent', 'received', 'device tx', 'device rx', 'drops'],
    r.vifs.map((v) => [v.vif, v.guest, v.mac, v.sent, v.received, v.txAccepted, v.rxDelivered,
      Object.entries(v.drops).map(([k, n]) => `${k}=${n}`).join(' ') || '-']),
  ));
  const p = r.phases;
  console.log();
  console.log(`all-to-all    ${p.allToAll.frames} of ${p.allToAll.offered} frames delivered in ${p.allToAll.seconds.toFixed(2)} s = ${(p.allToAll.pps / 1e6).toFixed(2)} Mpps (${r.vifs.length - 1} guests + 1 engine on ${r.machine.cpus} cores)`);
  console.log(`              the senders do not wait for the receivers: frames for a guest whose receive ring was full while it was off-CPU are dropped and counted (rx_no_buffer)`);
  console.log(`broadcast     ${p.broadcast.sent} frames sent, ${p.broadcast.deliveredCopies} copies delivered`);
  console.log(`anti-spoofing ${p.spoof.attempted} spoofed frames, ${p.spoof.blocked} blocked by the device, ${p.spoof.receivedByVictims} reached a guest`);
  console.log(`ping-pong     ${p.pingPong.answered}/${p.pingPong.pings} answered, RTT p50 ${p.pingPong.rttP50us.toFixed(1)} µs, p99 ${p.pingPong.rttP99us.toFixed(1)} µs (${p.pingPong.threads}; ${r.machine.cpus} cores)`);
  console.log(`accounting    sent ${r.sent} + flood copies ${r.floodCopies} = delivered ${r.delivered} + to uplink ${r.toUplink} + drops ${Object.values(r.drops).reduce((a, b) => a + b, 0)}; unaccounted = ${r.unaccounted}`);
}
