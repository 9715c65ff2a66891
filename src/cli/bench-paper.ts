/**
 * `svnic bench paper`: the paper's comparison, svnic's VIFs against a Xen-style driver domain
 * (src/baseline/), side by side in one run (bench/paper.ts). Registered under `svnic bench`.
 */
import type { Command } from 'commander';

const list = (name: string) => (v: string): number[] => {
  const xs = v.split(',').map(Number);
  if (xs.some((x) => !Number.isInteger(x) || x < 1 || x > 250)) throw new Error(`${name} must be a comma-separated list of integers in 1..250, got "${v}"`);
  return xs;
};
const positiveInt = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${v}"`);
  return n;
};

export function registerBenchPaper(bench: Command): void {
  bench
    .command('paper')
    .description("The paper's comparison: svnic's VIFs vs a Xen-style driver domain (throughput, latency, scalability, interrupt routing, CPU per packet)")
    .option('--quick', 'short run: N = 1 2 4 8, 3 rounds of 0.3 s windows (about 3 minutes on 2 cores)')
    .option('--json <file>', 'write the rows, the ratios and the machine as JSON')
    .option('--plots <dir>', 'write throughput and latency vs N plots (SVG) into this directory')
    .option('--markdown <file>', 'write the results as markdown tables (as in docs/results-paper.md)')
    .option('--rounds <n>', 'rounds; every measurement runs once per round and per path, medians reported', positiveInt('--rounds'))
    .option('--duration <ms>', 'measured window per trial in ms', positiveInt('--duration'))
    .option('--warmup <ms>', 'warm-up per trial in ms', positiveInt('--warmup'))
    .option('--guests <list>', 'guest counts, e.g. 1,4,16 (default 1,2,4,8,16,32; --quick 1,2,4,8)', list('--guests'))
    .option('--modes <list>', 'interrupt modes: direct,hypervisor (default both)')
    .option('--ping-gap <us>', 'pause between one guest\'s pings in µs (default 1000: every thread sleeps between pings; 0: back to back)', (v: string) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0 || n > 1e6) throw new Error(`--ping-gap must be a number of µs in 0..1000000, got "${v}"`);
      return n;
    })
    .option('--no-scale', 'leave out the scalability part (1024 VIFs, 64 guests)')
    .addHelpText('after', `
Paths (the guest program is the same on both):
  svnic          guest -> its VIF on the device -> device engine -> wire -> peer host
  driver-domain  guest -> netif -> driver domain (netback grant copy, learning bridge)
                 -> its one NIC VIF on the device -> device engine -> wire -> peer host
The peer host is a guest on a second device joined by a wire. Each round runs every measurement on
both paths back to back, alternating which goes first; figures are medians over rounds. Ratios are
svnic / driver-domain (the paper: throughput 1.77, latency 0.47). See docs/results-paper.md.

Example:
  svnic bench paper --quick --json paper.json --plots docs/plots`)
    .action(async (opts: { quick?: boolean; json?: string; plots?: string; markdown?: string; rounds?: number; duration?: number; warmup?: number; guests?: number[]; modes?: string; scale?: boolean; pingGap?: number }) => {
      const modes = opts.modes?.split(',');
      if (modes && modes.some((m) => m !== 'direct' && m !== 'hypervisor')) throw new Error(`--modes takes direct and/or hypervisor, got "${opts.modes}"`);
      const { runPaper } = await import('../../bench/paper.js');
      const r = await runPaper({
        quick: opts.quick, json: opts.json, plots: opts.plots, markdown: opts.markdown, rounds: opts.rounds, durationMs: opts.duration, warmupMs: opts.warmup,
        guests: opts.guests, modes: modes as ('direct' | 'hypervisor')[] | undefined, noScale: opts.scale === false, pingGapUs: opts.pingGap,
        command: ['svnic', ...process.argv.slice(2)].join(' '),
      });
      if (r.rows.some((x) => x.errors.length > 0)) process.exitCode = 1;
    });
}
