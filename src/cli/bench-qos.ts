/**
 * `svnic bench qos`: weighted shares, rate limits and priority latency (bench/qos.ts, docs/qos.md).
 * Registered under `svnic bench`; the benchmark code is loaded only when it runs.
 */
import type { Command } from 'commander';

export function registerBenchQos(program: Command): void {
  const bench = program.commands.find((c) => c.name() === 'bench') ?? program.command('bench');
  bench
    .command('qos')
    .description('QoS evidence: weighted shares of a shaped uplink, rate limits held under 10x load, priority ping-pong latency')
    .option('--quick', 'shorter: shares 2 s, one round of latency cases (the limits always run 5 s)')
    .option('--rounds <n>', 'rounds of the latency cases, 2 s per case and round (default 5)', Number)
    .option('--capacity <bps>', 'uplink capacity in the shares scenario, bits/s (default 1e9)', Number)
    .option('--json <file>', 'also write the results and the machine as JSON')
    .addHelpText('after', `
Scenarios (one device engine; the contending VIFs belong to one guest thread, so 2 busy threads):
  shares    4 VIFs with weights 1:2:3:4 keep their rings full of 1500 B frames toward an uplink
            shaped to --capacity: each VIF's share (target 10/20/30/40 %)
  limits    a VIF limited to 100 Mbit/s and one to 10 kpps, each offered 10x, over 5 s
  priority  64 B ping-pong p50/p99 via the echo uplink: alone, with 3 greedy neighbours and no
            QoS, with the pinger at DRR weight 4, and at priority 1 (3 threads on 2 cores)`)
    .action(async (opts: { quick?: boolean; rounds?: number; capacity?: number; json?: string }) => {
      const { runQos } = await import('../../bench/qos.js');
      await runQos({ quick: opts.quick, rounds: opts.rounds, capacity: opts.capacity, json: opts.json, command: ['svnic', ...process.argv.slice(2)].join(' ') });
    });
}
