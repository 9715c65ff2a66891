/**
 * Turning the trials of `svnic bench core` into rows, target verdicts and tables.
 *
 * Two things on this machine make a plain median misleading, so every row also says under which
 * conditions its trials ran:
 *  - other processes (other agents' tests) take CPU in bursts: a trial during which they used more
 *    than `maxOtherCores` is repeated, and one still disturbed is left out of the medians ('x');
 *  - the host places the VM's two vCPUs either on the two hyperthreads of one core ("near": a
 *    bare-ring ping-pong takes about 0.3 µs) or on two cores ("far": about 1 µs), and moves them
 *    while we run; the two placements differ by up to 3x, so rows give medians per placement too.
 */
import { median } from './common.js';
import type { Case, Group } from './cases.js';

export const NEAR_PROBE_US = 0.5;

/** One trial of one case. */
export interface Sample {
  mpps: number;
  gbps: number;
  p50?: number;
  p99?: number;
  p999?: number;
  lost?: number;
  guestSleepsPerRtt?: number;
  engineSleepsPerRtt?: number;
  otherCores: number;
  selfCores: number;
  drops: Record<string, number>;
  error?: string;
  /** Attempts made before this one was kept (the machine was busy). */
  retries?: number;
  /** Placement probe just before the trial: p50 RTT (µs) of a bare-ring ping-pong. */
  probeUs?: number;
}

/** Medians of the trials that ran under one placement. */
export interface PlacementStat {
  trials: number;
  mpps: number;
  gbps: number;
  rttP50us?: number;
  rttP99us?: number;
}

export interface Row {
  name: string;
  frameBytes: number;
  /** Busy data-path threads (the hypervisor's main thread idles in its event loop and is not counted). */
  threads: number;
  /** Throughput rows: million frames delivered per second. Latency rows: million round trips per second. */
  mpps: number;
  /** Throughput rows: frame bits delivered per second / 1e9. Latency rows: both directions together. */
  gbps: number;
  rttP50us?: number;
  rttP99us?: number;
  rttP999us?: number;
  kind: 'throughput' | 'latency';
  /** spec: asked for by the issue; diagnostic: explains a spec row (e.g. the cost of 3 threads on 2 cores). */
  group: Group;
  threadNote: string;
  /** Latency rows: the pinger guest's spin budget in µs (0 = sleeps at once); null: not svnic. */
  spinUs?: number | null;
  /** Medians per vCPU placement (see the file comment). */
  near?: PlacementStat;
  far?: PlacementStat;
  /** Per round, in order: Mpps (throughput) or RTT p50 µs (latency); null when the trial failed. */
  perRound: (number | null)[];
  /** Per round: n (near), f (far), - (not probed), x (left out: machine busy), E (failed). */
  placement: string;
  /** Per round, the placement probe's p50 RTT in µs. */
  probeUs: (number | null)[];
  /** Median over used trials of the cores other processes used (noise) and this process used. */
  otherCores: number;
  selfCores: number;
  /** Named svnic drop counters that moved (summed over used trials). */
  drops: Record<string, number>;
  lost?: number;
  /** svnic latency rows: how often the pinger guest / the device engine slept per round trip. */
  guestSleepsPerRtt?: number;
  engineSleepsPerRtt?: number;
  /** Trials repeated because the machine was busy; trials left out of the medians for it. */
  noisyRetries: number;
  excluded: number;
  errors: string[];
}

export interface Target {
  what: string;
  /** Trials compared: all used trials, or only those under one placement. */
  placement: 'all' | 'near' | 'far';
  measured: number;
  target: string;
  met: boolean;
}

const r3 = (x: number): number => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : x);

export const placementOf = (p: number | undefined): 'n' | 'f' | '-' =>
  p === undefined || !Number.isFinite(p) ? '-' : p < NEAR_PROBE_US ? 'n' : 'f';

function stat(c: Case, xs: Sample[]): PlacementStat | undefined {
  if (xs.length === 0) return undefined;
  const s: PlacementStat = { trials: xs.length, mpps: r3(median(xs.map((x) => x.mpps))), gbps: r3(median(xs.map((x) => x.gbps))) };
  if (c.kind === 'latency') {
    s.rttP50us = r3(median(xs.map((x) => x.p50!)));
    s.rttP99us = r3(median(xs.map((x) => x.p99!)));
  }
  return s;
}

export function summarize(c: Case, samples: Sample[], maxOther: number): Row {
  const ok = samples.filter((s) => !s.error);
  const quiet = ok.filter((s) => !(s.otherCores > maxOther));
  const used = quiet.length > 0 ? quiet : ok; // if every trial was disturbed, say so (excluded = 0) but report
  const isUsed = (s: Sample): boolean => used.includes(s);
  const drops: Record<string, number> = {};
  for (const s of used) for (const [k, v] of Object.entries(s.drops)) drops[k] = (drops[k] ?? 0) + v;
  const all = stat(c, used);
  const row: Row = {
    name: c.name, frameBytes: c.frameBytes, threads: c.threads,
    mpps: all?.mpps ?? NaN, gbps: all?.gbps ?? NaN,
    kind: c.kind, group: c.group, threadNote: c.threadNote,
    near: stat(c, used.filter((s) => placementOf(s.probeUs) === 'n')),
    far: stat(c, used.filter((s) => placementOf(s.probeUs) === 'f')),
    perRound: samples.map((s) => (s.error ? null : r3(c.kind === 'latency' ? s.p50! : s.mpps))),
    placement: samples.map((s) => (s.error ? 'E' : !isUsed(s) ? 'x' : placementOf(s.probeUs))).join(''),
    probeUs: samples.map((s) => (s.probeUs === undefined || !Number.isFinite(s.probeUs) ? null : r3(s.probeUs))),
    otherCores: median(used.map((s) => s.otherCores)), selfCores: median(used.map((s) => s.selfCores)),
    drops,
    noisyRetries: samples.reduce((a, s) => a + (s.retries ?? 0), 0),
    excluded: ok.length - used.length,
    errors: samples.filter((s) => s.error).map((s) => s.error!),
  };
  if (c.kind === 'latency') {
    row.spinUs = c.spinUs;
    row.rttP50us = all?.rttP50us;
    row.rttP99us = all?.rttP99us;
    row.rttP999us = r3(median(used.map((s) => s.p999!)));
    row.lost = used.reduce((a, s) => a + (s.lost ?? 0), 0);
    if (used.some((s) => s.guestSleepsPerRtt !== undefined)) {
      row.guestSleepsPerRtt = r3(median(used.map((s) => s.guestSleepsPerRtt ?? NaN)));
      row.engineSleepsPerRtt = r3(median(used.map((s) => s.engineSleepsPerRtt ?? NaN)));
    }
  }
  return row;
}

/**
 * The targets, for all used trials and per placement. "all" ratios are medians of
 * per-round ratios (the two trials ran within a minute of each other); per-placement ratios are
 * ratios of that placement's medians.
 */
export function evaluateTargets(rows: Row[]): Target[] {
  const get = (name: string, size: number): Row | undefined => rows.find((r) => r.name === name && r.frameBytes === size);
  const used = (r: Row, i: number): number | null => (r.placement[i] === 'n' || r.placement[i] === 'f' || r.placement[i] === '-' ? r.perRound[i]! : null);
  const pairedRatio = (a: Row, b: Row): number =>
    median(a.perRound.map((_, i) => {
      const x = used(a, i);
      const y = used(b, i);
      return x !== null && y !== null ? x / y : NaN;
    }));
  const out: Target[] = [];
  const add = (what: string, target: string, ok: (x: number) => boolean, all: number, near?: number, far?: number): void => {
    for (const [placement, x] of [['all', all], ['near', near], ['far', far]] as const) {
      if (x !== undefined && Number.isFinite(x)) out.push({ what, placement, measured: r3(x), target, met: ok(x) });
    }
  };
  const up64 = get('svnic-uplink', 64);
  const raw64 = get('raw-ring', 64);
  const mp64 = get('messageport', 64);
  const up1500 = get('svnic-uplink', 1500);
  const echo = get('svnic-echo-rtt-spin', 64);
  const per = (a: Row, b: Row, p: 'near' | 'far'): number | undefined => (a[p] && b[p] ? a[p]!.mpps / b[p]!.mpps : undefined);
  if (up64 && raw64) {
    add('svnic-uplink / raw-ring, 64 B Mpps', '>= 0.40', (x) => x >= 0.4, pairedRatio(up64, raw64), per(up64, raw64, 'near'), per(up64, raw64, 'far'));
  }
  if (up64 && mp64) {
    add('svnic-uplink / messageport, 64 B Mpps', '>= 15', (x) => x >= 15, pairedRatio(up64, mp64), per(up64, mp64, 'near'), per(up64, mp64, 'far'));
  }
  if (up1500) add('svnic-uplink 1500 B Gbit/s', '>= 10', (x) => x >= 10, up1500.gbps, up1500.near?.gbps, up1500.far?.gbps);
  if (echo?.rttP50us !== undefined) {
    add('guest <-> echo port RTT p50 µs, spinning', '< 10', (x) => x < 10, echo.rttP50us, echo.near?.rttP50us, echo.far?.rttP50us);
  }
  return out;
}

export const fmt = (x: number | undefined | null, d = 2): string => (x === undefined || x === null || !Number.isFinite(x) ? '-' : x.toFixed(d));

const placementCell = (r: Row, p: PlacementStat | undefined): string =>
  p === undefined ? '-' : `${r.kind === 'latency' ? fmt(p.rttP50us) : fmt(p.mpps)} (${p.trials})`;

/**
 * Markdown table. "near"/"far": Mpps (throughput) or RTT p50 µs (latency), median of the trials
 * under that placement (their count in brackets). "rounds": each round's value and placement.
 */
export function formatTable(rows: Row[]): string {
  const head = '| case | frame B | threads | Mpps | Gbit/s | RTT p50 µs | RTT p99 µs | near | far | rounds | other CPU |';
  const sep = '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |';
  const lines = rows.map((r) => {
    const lat = r.kind === 'latency';
    const rounds = r.perRound.map((x, i) => `${fmt(x)}${r.placement[i] ?? ''}`).join(' ');
    return `| ${r.name} | ${r.frameBytes} | ${r.threads} | ${fmt(r.mpps, lat ? 3 : 2)} | ${fmt(r.gbps)} | ${fmt(r.rttP50us)} | ${fmt(r.rttP99us)} | ${placementCell(r, r.near)} | ${placementCell(r, r.far)} | ${rounds} | ${fmt(r.otherCores)} |`;
  });
  return [head, sep, ...lines].join('\n');
}

export function formatTargets(t: Target[]): string {
  return t.map((x) => `- ${x.met ? 'MET   ' : 'MISSED'} ${x.what} (${x.placement}): ${x.measured} (target ${x.target})`).join('\n');
}

/** Drops, losses, repeats and errors worth a line under the table. */
export function formatNotes(rows: Row[], maxOther: number): string[] {
  const out: string[] = [];
  for (const r of rows) {
    const extra = [
      ...Object.entries(r.drops).map(([k, v]) => `${k}=${v}`),
      ...(r.lost ? [`lost=${r.lost}`] : []),
      ...(r.guestSleepsPerRtt !== undefined ? [`sleeps per round trip: guest ${fmt(r.guestSleepsPerRtt)}, engine ${fmt(r.engineSleepsPerRtt)}`] : []),
      ...(r.noisyRetries ? [`${r.noisyRetries} trials repeated (machine busy)`] : []),
      ...(r.excluded ? [`${r.excluded} trials left out (other processes above ${maxOther} cores)`] : []),
      ...r.errors.map((e) => `error: ${e}`),
    ];
    if (extra.length) out.push(`${r.name} ${r.frameBytes} B: ${extra.join(', ')}`);
  }
  return out;
}
