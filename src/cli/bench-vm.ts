/** `svnic bench vm`: VM-to-VM iperf3 and ping through svnic vs QEMU's own networking (bench/vm.ts). */
import type { Command } from 'commander';

export function registerBenchVm(bench: Command): void {
  bench
    .command('vm')
    .description('Two QEMU/TCG VMs: iperf3 and ping through svnic vhost-user VIFs vs -netdev stream vs TAP + Linux bridge')
    .option('--rounds <n>', 'rounds (each boots fresh VMs for every path; medians over rounds)', Number, 3)
    .option('--seconds <n>', 'iperf3 -t per trial', Number, 5)
    .option('--pings <n>', 'pings per trial (after a warm-up one)', Number, 20)
    .option('--paths <list>', 'comma-separated subset of svnic,svnic-nospin,svnic-offload,stream,tap-bridge')
    .option('--quick', '1 round, iperf3 -t 3, 10 pings')
    .option('--json <file>', 'write every trial, the machine and the medians as JSON')
    .addHelpText('after', `
Needs root (TAP, network namespace, apt-get download for the guest image on first use) and
qemu-system-x86. Under TCG the guests' emulated CPUs are the bottleneck: see docs/vm.md.
Example:
  svnic bench vm --quick
  svnic bench vm --rounds 5 --json vm.json`)
    .action(async (o: { rounds: number; seconds: number; pings: number; paths?: string; quick?: boolean; json?: string }) => {
      const { runVmBench } = await import('../../bench/vm.js');
      const q = o.quick === true;
      const { trials } = await runVmBench({
        rounds: q ? 1 : o.rounds, seconds: q ? 3 : o.seconds, pings: q ? 10 : o.pings, json: o.json,
        paths: o.paths?.split(',') as import('../../bench/vm.js').VmPath[] | undefined,
        command: ['svnic', ...process.argv.slice(2)].join(' '),
      });
      if (trials.some((t) => t.error)) process.exitCode = 1;
    });
}
