/** `svnic bench paper`: samples to rows (medians over rounds), ratios, and text tables. */
import type { IrqMode } from '../src/device/engine.js';
import { median } from './common.js';
import type { Path } from './paper-topology.js';
import type { Sample } from './paper.js';

export interface PaperRow {
  path: Path;
  interruptMode: IrqMode;
  guests: number;
  frameBytes: number;
  /** Aggregate frame bits delivered to the peer host per second / 1e9 (median over rounds). */
  gbps: number;
  mpps: number;
  perGuestGbps: number;
  minGuestGbps: number;
  maxGuestGbps: number;
  rttP50us: number;
  rttP99us: number;
  /** CPU time of the whole process (all threads) per delivered frame, ns. */
  cpuNsPerPacket: number;
  /** Busy data-path threads while a trial runs, and who they are. */
  threads: number;
  threadNote: string;
  throughputTrials: number;
  latencyTrials: number;
  pingsLost: number;
  errors: string[];
  /** Named drop counters after the last trial (cumulative over the topology's life). */
  drops: Record<string, number>;
}

/** Per N (key) and frame size (key): svnic / driver-domain. */
export type Ratios = Record<string, Record<string, { throughput: number; latency: number }>>;

const r3 = (x: number): number => Math.round(x * 1000) / 1000;

export function buildRows(samples: Sample[]): PaperRow[] {
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const k = `${s.mode}|${s.path}|${s.guests}|${s.frameBytes}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(s);
  }
  const rows: PaperRow[] = [];
  for (const g of groups.values()) {
    const first = g[0]!;
    const tp = g.map((s) => s.throughput).filter((t) => t !== undefined && !t.error) as NonNullable<Sample['throughput']>[];
    const lat = g.map((s) => s.latency).filter((l) => l !== undefined && !l.error) as NonNullable<Sample['latency']>[];
    const gbps = median(tp.map((t) => t.gbps));
    rows.push({
      path: first.path, interruptMode: first.mode, guests: first.guests, frameBytes: first.frameBytes,
      gbps: r3(gbps), mpps: r3(median(tp.map((t) => t.mpps))), perGuestGbps: r3(gbps / first.guests),
      minGuestGbps: r3(median(tp.map((t) => t.minGuestGbps))), maxGuestGbps: r3(median(tp.map((t) => t.maxGuestGbps))),
      rttP50us: r3(median(lat.map((l) => l.rttP50us))), rttP99us: r3(median(lat.map((l) => l.rttP99us))),
      cpuNsPerPacket: Math.round(median(tp.map((t) => t.cpuNsPerPacket))),
      threads: first.threads, threadNote: first.threadNote,
      throughputTrials: tp.length, latencyTrials: lat.length,
      pingsLost: lat.reduce((s, l) => s + l.lost, 0),
      errors: g.flatMap((s) => [s.throughput?.error, s.latency?.error].filter((e): e is string => !!e)),
      drops: g[g.length - 1]!.drops,
    });
  }
  return rows.sort((a, b) => a.interruptMode.localeCompare(b.interruptMode) || a.guests - b.guests || a.frameBytes - b.frameBytes || a.path.localeCompare(b.path));
}

export function ratiosOf(rows: PaperRow[]): Ratios {
  const out: Ratios = {};
  for (const s of rows.filter((r) => r.path === 'svnic')) {
    const d = rows.find((r) => r.path === 'driver-domain' && r.guests === s.guests && r.frameBytes === s.frameBytes);
    if (!d) continue;
    (out[String(s.guests)] ??= {})[String(s.frameBytes)] = { throughput: r3(s.gbps / d.gbps), latency: r3(s.rttP50us / d.rttP50us) };
  }
  return out;
}

const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '-');

export function formatRows(rows: PaperRow[]): string {
  const head = 'irq         path           N  bytes    Gbit/s      Mpps  per-guest (min..max) Gbit/s   p50 µs   p99 µs  CPU ns/pkt  threads';
  const lines = rows.map((r) => [
    r.interruptMode.padEnd(10), r.path.padEnd(13), String(r.guests).padStart(3), String(r.frameBytes).padStart(6),
    f(r.gbps, 3).padStart(9), f(r.mpps, 3).padStart(9),
    `${f(r.perGuestGbps, 3)} (${f(r.minGuestGbps, 3)}..${f(r.maxGuestGbps, 3)})`.padStart(27),
    f(r.rttP50us, 1).padStart(8), f(r.rttP99us, 1).padStart(8), String(r.cpuNsPerPacket).padStart(11), String(r.threads).padStart(8),
  ].join(' ') + (r.errors.length ? `  errors: ${r.errors.length}` : ''));
  return [head, ...lines].join('\n');
}

export function formatRatios(r: Ratios): string {
  const lines = ['  N   bytes  throughput  latency'];
  for (const [n, bySize] of Object.entries(r)) {
    for (const [size, x] of Object.entries(bySize)) {
      const ok = x.throughput >= 1.77 && x.latency <= 0.47 ? 'meets the paper' : 'short of the paper';
      lines.push(`${n.padStart(3)} ${size.padStart(7)} ${f(x.throughput).padStart(11)} ${f(x.latency).padStart(8)}  ${ok}`);
    }
  }
  return lines.join('\n');
}
