/**
 * `svnic bench paper`: the paper's comparison (Raj & Schwan, HPDC 2007, section 5), svnic's
 * self-virtualized VIFs against a Xen-style driver domain (src/baseline/), on the same code base,
 * in one process tree. See docs/results-paper.md for what it measures and how to read it.
 *
 *  1. throughput: N guests each stream 64 B or 1500 B frames to a peer host (a second device
 *     joined by a `wire`); aggregate and per-guest Gbit/s and Mpps, counted where frames arrive;
 *  2. latency: ping-pong between each guest and the peer host at low load, p50/p99;
 *  3. scalability: 1024 VIFs on one device (paper-scale.ts);
 *  4. interrupt routing: 1 and 2 with the devices in `direct` and in `hypervisor` interrupt mode;
 *  5. CPU per packet: this process's CPU time (all threads) over a throughput window / packets.
 *
 * Method: for each interrupt mode and N, both paths' topologies are built and kept; every round
 * runs each measurement on both paths back to back, alternating which goes first, so that drift
 * on this shared machine hits both; figures are medians over rounds.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import type { IrqMode } from '../src/device/engine.js';
import { machineInfo } from './sysinfo.js';
import { Topology, PATHS, SPIN, type Path } from './paper-topology.js';
import { latencyTrial, throughputTrial, GAP_US, type LatencySample, type ThroughputSample } from './paper-trials.js';
import { runScale, type ScaleResult } from './paper-scale.js';
import { buildRows, ratiosOf, formatRows, formatRatios, type PaperRow, type Ratios } from './paper-report.js';
import { writePlots } from './paper-plots.js';
import { paperMarkdown } from './paper-markdown.js';

export const FRAME_SIZES = [64, 1500] as const;

export interface PaperOptions {
  quick?: boolean;
  json?: string;
  plots?: string;
  /** Write the result as markdown tables (the tables of docs/results-paper.md). */
  markdown?: string;
  rounds?: number;
  durationMs?: number;
  warmupMs?: number;
  /** Guest counts (default 1 2 4 8 16 32; --quick 1 2 4 8). */
  guests?: number[];
  modes?: IrqMode[];
  /** Pause between one guest's pings, µs (default GAP_US: every thread sleeps between pings). */
  pingGapUs?: number;
  /** Leave out the scalability part. */
  noScale?: boolean;
  command?: string;
  log?: (line: string) => void;
}

export interface Sample {
  mode: IrqMode;
  path: Path;
  guests: number;
  frameBytes: number;
  round: number;
  throughput?: ThroughputSample;
  latency?: LatencySample;
  threads: number;
  threadNote: string;
  drops: Record<string, number>;
}

export interface PaperResult {
  benchmark: 'svnic bench paper';
  command: string;
  date: string;
  quick: boolean;
  rounds: number;
  durationMs: number;
  warmupMs: number;
  spinUs: typeof SPIN;
  pingGapUs: number;
  machine: ReturnType<typeof machineInfo> & { loadavgAtEnd: number[] };
  rows: PaperRow[];
  /** direct interrupt mode: per N and frame size, svnic / driver-domain (the paper's comparison). */
  ratios: Ratios;
  ratiosByInterruptMode: Record<IrqMode, Ratios>;
  targets: { throughput: number; latency: number; goalThroughput: number; goalLatency: number };
  scale?: ScaleResult;
  wallSeconds: number;
}

export async function runPaper(opts: PaperOptions = {}): Promise<PaperResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const quick = opts.quick ?? false;
  const rounds = opts.rounds ?? (quick ? 3 : 5);
  const durationMs = opts.durationMs ?? (quick ? 300 : 1000);
  const warmupMs = opts.warmupMs ?? (quick ? 150 : 300);
  const ns = opts.guests ?? (quick ? [1, 2, 4, 8] : [1, 2, 4, 8, 16, 32]);
  const modes = opts.modes ?? ['direct', 'hypervisor'];
  const gapUs = opts.pingGapUs ?? GAP_US;
  const machine = machineInfo();
  const started = performance.now();
  const date = new Date().toISOString();
  log(`svnic bench paper: guests ${ns.join(' ')}, modes ${modes.join(' ')}, ${rounds} rounds, ${warmupMs} ms warm-up + ${durationMs} ms per trial`);
  log(`machine: ${machine.cpus} x ${machine.cpuModel}, node ${machine.node}, load ${machine.loadavgAtStart.join(' ')}`);
  const samples: Sample[] = [];
  for (const mode of modes) {
    for (const n of ns) {
      const topo = {} as Record<Path, Topology>;
      try {
        for (const p of PATHS) topo[p] = await Topology.build(p, n, mode);
        // One unrecorded trial per path first: every thread's code gets compiled before round 1.
        for (const p of PATHS) await throughputTrial(topo[p], 64, warmupMs, durationMs / 2).catch(() => {});
        for (let round = 1; round <= rounds; round++) {
          let k = 0;
          for (const kind of ['throughput', 'latency'] as const) {
            for (const size of FRAME_SIZES) {
              const order = (round + k++) % 2 === 0 ? PATHS : [...PATHS].reverse();
              for (const p of order) {
                const t = topo[p];
                const s: Sample = { mode, path: p, guests: n, frameBytes: size, round, threads: t.threads.total, threadNote: t.threads.note, drops: {} };
                try {
                  if (kind === 'throughput') s.throughput = await throughputTrial(t, size, warmupMs, durationMs);
                  else s.latency = await latencyTrial(t, size, warmupMs, durationMs, gapUs);
                } catch (e) {
                  if (kind === 'throughput') s.throughput = { gbps: NaN, mpps: NaN, minGuestGbps: NaN, maxGuestGbps: NaN, cpuNsPerPacket: NaN, selfCores: NaN, otherCores: NaN, error: (e as Error).message };
                  else s.latency = { rttP50us: NaN, rttP99us: NaN, pings: 0, lost: 0, otherCores: NaN, error: (e as Error).message };
                }
                s.drops = t.drops();
                samples.push(s);
                log(`  [${mode} N=${String(n).padStart(2)} r${round}] ${p.padEnd(13)} ${String(size).padStart(4)} B ${describe(s)}`);
              }
            }
          }
        }
      } finally {
        for (const t of Object.values(topo)) await t.stop().catch((e: Error) => log(`  (stopping a topology failed: ${e.message})`));
      }
    }
  }
  const rows = buildRows(samples);
  const ratiosByInterruptMode = {} as Record<IrqMode, Ratios>;
  for (const m of modes) ratiosByInterruptMode[m] = ratiosOf(rows.filter((r) => r.interruptMode === m));
  let scale: ScaleResult | undefined;
  if (!opts.noScale) {
    log('scalability:');
    scale = await runScale({
      vifs: 1024, queueSize: 64, idleMs: quick ? 1000 : 3000, manyGuests: 64, rounds: quick ? 1 : 3,
      warmupMs, durationMs, log,
    });
  }
  const result: PaperResult = {
    benchmark: 'svnic bench paper', command: opts.command ?? `svnic bench paper${quick ? ' --quick' : ''}`, date, quick,
    rounds, durationMs, warmupMs, spinUs: SPIN, pingGapUs: gapUs,
    machine: { ...machine, loadavgAtEnd: machineInfo().loadavgAtStart },
    rows, ratios: ratiosByInterruptMode.direct ?? ratiosByInterruptMode[modes[0]!]!, ratiosByInterruptMode,
    targets: { throughput: 1.77, latency: 0.47, goalThroughput: 2.5, goalLatency: 0.3 },
    scale, wallSeconds: Math.round((performance.now() - started) / 100) / 10,
  };
  log('');
  log(formatRows(rows));
  for (const m of modes) {
    log('');
    log(`ratios svnic / driver-domain, ${m} interrupts (targets: throughput >= 1.77, latency <= 0.47):`);
    log(formatRatios(ratiosByInterruptMode[m]!));
  }
  if (scale) {
    log('');
    log(`scalability: ${scale.vifs} VIFs (queue ${scale.queueSize}) created in ${scale.createMs.toFixed(0)} ms (${scale.createUsPerVif.toFixed(0)} µs each); ` +
      `${(scale.sabBytesPerVif / 1024).toFixed(0)} KiB VIF memory each (array buffers +${(scale.arrayBufferBytesPerVif / 1024).toFixed(0)} KiB, RSS ${(scale.rssBytesPerVif / 1024).toFixed(0)} KiB each); ` +
      `idle: ${scale.idleCores} cores, ${scale.idleEngineSweepsPerS.toFixed(1)} sweeps/s`);
    for (const p of PATHS) {
      const t = scale.throughput[p];
      log(`  ${p}: 64 B, 1 guest ${t.oneGuestGbps.toFixed(3)} Gbit/s, ${scale.manyGuests} guests ${t.manyGuestsGbps.toFixed(3)} Gbit/s (x${t.relative.toFixed(2)})`);
    }
  }
  if (opts.plots) {
    await mkdir(opts.plots, { recursive: true });
    for (const f of await writePlots(rows, opts.plots, { date, machine: `${machine.cpus} x ${machine.cpuModel}` })) log(`wrote ${f}`);
  }
  if (opts.json) {
    await writeFile(opts.json, JSON.stringify(result, null, 2) + '\n');
    log(`wrote ${opts.json}`);
  }
  if (opts.markdown) {
    await writeFile(opts.markdown, paperMarkdown(result));
    log(`wrote ${opts.markdown}`);
  }
  log(`wall time ${result.wallSeconds} s`);
  return result;
}

function describe(s: Sample): string {
  if (s.throughput) {
    const t = s.throughput;
    return t.error ? `ERROR ${t.error}` : `${t.mpps.toFixed(3)} Mpps ${t.gbps.toFixed(3)} Gbit/s ${t.cpuNsPerPacket.toFixed(0)} ns CPU/pkt (other ${t.otherCores} cores)`;
  }
  const l = s.latency!;
  return l.error ? `ERROR ${l.error}` : `rtt p50 ${l.rttP50us.toFixed(1)} µs p99 ${l.rttP99us.toFixed(1)} µs (${l.pings} pings, ${l.lost} lost, other ${l.otherCores} cores)`;
}
