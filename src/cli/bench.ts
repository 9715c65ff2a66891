/**
 * `svnic bench`: benchmarks. They are never part of the tests' pass/fail; they compare svnic side
 * by side with baselines in one run and report medians (bench/). The benchmark code is loaded
 * only when a benchmark runs.
 */
import type { Command } from 'commander';
import { registerBenchPaper } from './bench-paper.js';

function positiveInt(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${v}"`);
    return n;
  };
}

export function registerBench(program: Command): void {
  const bench = program
    .command('bench')
    .description('Run a benchmark (results vary with the machine and its load; see docs/results-*.md)')
    .addHelpText('after', `
Benchmarks:
  core    svnic's data path next to a bare SharedArrayBuffer ring and MessagePort:
          throughput at 64 B and 1500 B, 64 B round-trip latency (p50/p99)

Example:
  svnic bench core --quick
  svnic bench core --json results.json`);

  bench
    .command('core')
    .description('Throughput and latency of svnic next to a bare SharedArrayBuffer ring and MessagePort')
    .option('--quick', 'short run: 3 rounds of 0.5 s windows (default 5 rounds of 2 s)')
    .option('--json <file>', 'also write every row, the machine and the target comparison as JSON')
    .option('--rounds <n>', 'rounds; each case runs once per round and the median is reported', positiveInt('--rounds'))
    .option('--duration <ms>', 'measured window per trial in ms', positiveInt('--duration'))
    .option('--warmup <ms>', 'warm-up per trial in ms, before the window', positiveInt('--warmup'))
    .option('--only <names>', 'comma-separated substrings: run only matching cases (e.g. "raw-ring,svnic-uplink")')
    .option('--spec-only', 'leave out the diagnostic rows')
    .option('--no-probe', 'skip the 0.1 s placement probe (bare-ring ping-pong) before each trial')
    .option('--max-other-cores <n>', 'repeat a trial (up to 3 times) when other processes used more cores than this; one still disturbed is left out of the medians (default 0.25)', Number)
    .addHelpText('after', `
Cases (each row reports name, frame bytes, busy threads, Mpps, Gbit/s; latency rows RTT p50/p99):
  raw-ring                  bare SharedArrayBuffer SPSC ring between two workers (the practical limit)
  messageport               the same frames posted between two workers with MessagePort
  svnic-uplink              one guest -> its VIF -> device engine -> null uplink (2 threads)
  svnic-vif2vif             guest -> device engine -> guest (3 threads on a 2-core machine)
  raw-ring-rtt              64 B ping-pong over two bare rings (2 threads)
  messageport-rtt           64 B ping-pong over MessagePort (2 threads)
  svnic-echo-rtt-spin       guest <-> echo port at the uplink, default spin budget (3 threads)
  svnic-echo-rtt-nospin     same, device spinUs 0, guest sleeps in nic.waitSync()
  svnic-vif2vif-rtt-spin    guest <-> guest through the device, default spin budget (3 threads)
  svnic-vif2vif-rtt-nospin  same, spinning disabled
Diagnostic rows (they explain the rows above; leave them out with --spec-only):
  svnic-vif2vif-1guest      one guest owns both VIFs: VIF to VIF with 2 threads
  svnic-vif2vif-yield       two guests that poll 20 µs, then sleep (3 threads)
  svnic-loop-rtt-spin       one guest pings itself through the device (2 threads)
  svnic-echo-rtt-2spin      guest and engine spin, the echo port sleeps

Throughput counts frames delivered (device/consumer counters), not frames attempted. Every case
runs once per round; figures are medians over rounds. The machine's load from other processes is
recorded per trial ("other CPU"), and so is where the host put the VM's two vCPUs: a 0.1 s
bare-ring ping-pong before each trial gives about 0.3 µs when they share a host core ("n", near)
and about 1 µs when they do not ("f", far). A full run takes about 5 minutes, --quick about 1.5.`)
    .action(async (opts: {
      quick?: boolean; json?: string; rounds?: number; duration?: number; warmup?: number; only?: string;
      specOnly?: boolean; maxOtherCores?: number; probe?: boolean;
    }) => {
      const { runCore } = await import('../../bench/core.js');
      const command = ['svnic', ...process.argv.slice(2)].join(' ');
      const result = await runCore({
        quick: opts.quick, json: opts.json, rounds: opts.rounds, durationMs: opts.duration, warmupMs: opts.warmup,
        only: opts.only?.split(','), specOnly: opts.specOnly, maxOtherCores: opts.maxOtherCores,
        noProbe: opts.probe === false, command,
      });
      if (result.rows.some((r) => r.errors.length > 0)) process.exitCode = 1;
    });

  registerBenchPaper(bench);

  // issue 4: uplinks to real networks (bench/uplink.ts)
  bench
    .command('uplink')
    .description('Guest-to-Linux latency and UDP throughput over svnic\'s VXLAN and TAP uplinks, next to the kernel\'s veth path (root)')
    .option('--rounds <n>', 'rounds; every path runs once per round, medians are reported (default 3)', positiveInt('--rounds'))
    .option('--duration <ms>', 'UDP window per trial in ms (default 2000)', positiveInt('--duration'))
    .option('--pings <n>', 'pings per latency trial (default 200, 10 ms apart)', positiveInt('--pings'))
    .option('--quick', 'one round of 1 s windows and 100 pings')
    .option('--json <file>', 'also write rows, ratios and every trial as JSON')
    .action(async (opts: { rounds?: number; duration?: number; pings?: number; quick?: boolean; json?: string }) => {
      const { runUplinkBench } = await import('../../bench/uplink.js');
      await runUplinkBench({
        rounds: opts.rounds ?? (opts.quick ? 1 : undefined), durationMs: opts.duration ?? (opts.quick ? 1000 : undefined),
        pings: opts.pings ?? (opts.quick ? 100 : undefined), json: opts.json, command: ['svnic', ...process.argv.slice(2)].join(' '),
      });
    });
}
