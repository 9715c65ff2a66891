/**
 * Rates for people: the daemon reads every counter row (shared memory, no engine is messaged)
 * once per interval and keeps a short history, from which `svnic stats`, `svnic top` and the
 * dashboard show per-VIF packet, bit and drop rates and per-engine utilisation. (Prometheus does not
 * need this: /metrics exports the raw totals and PromQL computes rates.)
 *
 * A VIF whose counters went down between two samples was replaced (a new VIF with the same name
 * starts from zero): its rate for that interval is 0, not negative. Time comes from `now`, so tests
 * can drive the sampler with a fake clock.
 */
import { VIF_DROP_COUNTERS, type EngineCounter, type VifCounter } from '../layout/counters.js';
import type { Runtime } from './runtime.js';

export interface VifSample {
  device: string;
  guest: string;
  state: string;
  counters: Record<VifCounter, number>;
  drops: number;
}

export interface Sample {
  /** ms since the epoch */
  t: number;
  vifs: Map<string, VifSample>;
  /** key: `${device}/${engine}` */
  engines: Map<string, { device: string; engine: number; counters: Record<EngineCounter, number> }>;
}

export interface VifRates {
  name: string;
  device: string;
  guest: string;
  state: string;
  /** frames/s and bits/s the guest sent (fromGuest) and received (toGuest) */
  txPps: number;
  rxPps: number;
  txBps: number;
  rxBps: number;
  dropsPs: number;
  /** totals since the VIF was created */
  txFrames: number;
  rxFrames: number;
  txBytes: number;
  rxBytes: number;
  drops: number;
  dropReasons: Record<string, number>;
}

export interface EngineRates {
  device: string;
  engine: number;
  /** busy_ns / (busy_ns + idle_ns) over the interval, 0..1 */
  busy: number;
  sleepsPs: number;
  wakeupsPs: number;
}

export interface Stats {
  t: number;
  intervalS: number;
  vifs: VifRates[];
  engines: EngineRates[];
}

export function takeSample(rt: Runtime, t: number): Sample {
  const vifs = new Map<string, VifSample>();
  for (const [name, r] of rt.vifs) {
    if (r.vif.state === 'destroyed') continue;
    const counters = r.vif.counters();
    vifs.set(name, { device: r.vif.device.name, guest: r.guest, state: r.vif.state, counters, drops: VIF_DROP_COUNTERS.reduce((s, k) => s + counters[k], 0) });
  }
  const engines = new Map<string, { device: string; engine: number; counters: Record<EngineCounter, number> }>();
  for (const [name, d] of rt.devices) {
    for (let i = 0; i < d.device.engineCount; i++) engines.set(`${name}/${i}`, { device: name, engine: i, counters: d.device.engineCounters(i) });
  }
  return { t, vifs, engines };
}

const rate = (now: number, then: number | undefined, dt: number): number => (then === undefined || now < then || dt <= 0 ? 0 : (now - then) / dt);

/** Rates between two samples (`prev` may be missing: rates 0). */
export function ratesBetween(prev: Sample | undefined, cur: Sample): Stats {
  const dt = prev ? (cur.t - prev.t) / 1000 : 0;
  const vifs: VifRates[] = [...cur.vifs].map(([name, v]) => {
    const p = prev?.vifs.get(name);
    const c = v.counters;
    const reset = p !== undefined && (c.tx_frames < p.counters.tx_frames || c.rx_frames < p.counters.rx_frames);
    const pc = reset ? undefined : p?.counters;
    const dropReasons: Record<string, number> = {};
    for (const k of VIF_DROP_COUNTERS) if (c[k]) dropReasons[k] = c[k];
    return {
      name, device: v.device, guest: v.guest, state: v.state,
      txPps: rate(c.tx_frames, pc?.tx_frames, dt), rxPps: rate(c.rx_frames, pc?.rx_frames, dt),
      txBps: 8 * rate(c.tx_bytes, pc?.tx_bytes, dt), rxBps: 8 * rate(c.rx_bytes, pc?.rx_bytes, dt),
      dropsPs: rate(v.drops, reset ? undefined : p?.drops, dt),
      txFrames: c.tx_frames, rxFrames: c.rx_frames, txBytes: c.tx_bytes, rxBytes: c.rx_bytes, drops: v.drops, dropReasons,
    };
  });
  const engines: EngineRates[] = [...cur.engines].map(([key, e]) => {
    const p = prev?.engines.get(key)?.counters;
    const c = e.counters;
    const busy = p ? c.busy_ns - p.busy_ns : 0;
    const idle = p ? c.idle_ns - p.idle_ns : 0;
    return {
      device: e.device, engine: e.engine, busy: busy + idle > 0 ? busy / (busy + idle) : 0,
      sleepsPs: rate(c.sleeps, p?.sleeps, dt), wakeupsPs: rate(c.wakeups, p?.wakeups, dt),
    };
  });
  return { t: cur.t, intervalS: dt, vifs, engines };
}

export class Sampler {
  private readonly samples: Sample[] = [];
  private readonly statsHistory: Stats[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly rt: Runtime,
    readonly keep = 300,
    private readonly now: () => number = Date.now,
  ) {}

  /** Take a sample now; the rates since the previous one. */
  sample(): Stats {
    const cur = takeSample(this.rt, this.now());
    const s = ratesBetween(this.samples[this.samples.length - 1], cur);
    this.samples.push(cur);
    this.statsHistory.push(s);
    if (this.samples.length > 2) this.samples.shift(); // rates need only the last one
    if (this.statsHistory.length > this.keep) this.statsHistory.shift();
    return s;
  }

  start(intervalMs = 1000, onError: (e: Error) => void = () => {}): void {
    this.sample();
    // A failed sample (a device stopping under it) must not take the daemon down: skip it.
    this.timer = setInterval(() => {
      try {
        this.sample();
      } catch (e) {
        onError(e as Error);
      }
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The latest rates (a fresh sample if none was taken yet). */
  latest(): Stats {
    return this.statsHistory[this.statsHistory.length - 1] ?? this.sample();
  }

  /** The last `n` rate samples, oldest first. */
  history(n = this.keep): Stats[] {
    return this.statsHistory.slice(-n);
  }

  /** The latest sample's engine busy fraction (for the /metrics gauge). */
  engineBusy(device: string, engine: number): number {
    return this.latest().engines.find((e) => e.device === device && e.engine === engine)?.busy ?? 0;
  }
}
