/**
 * The cases of `svnic bench core`. A throughput case sets up its threads and starts traffic; the
 * runner samples its delivered-frame counter over a fixed window. A latency case runs one
 * ping-pong trial and returns the pinger's RTT summary.
 *
 * Throughput is counted where frames arrive, never where they are attempted:
 *  - raw-ring, messageport: frames the consumer took (its own counter in shared memory);
 *  - svnic-uplink: the device's uplink_tx_frames (frames the engine handed to the null uplink);
 *  - svnic-vif2vif: the receiving VIF's rx_frames (frames the device placed in its receive queue).
 */
import { MessageChannel, Worker, type TransferListItem } from 'node:worker_threads';
import { Hypervisor } from '../src/hypervisor/hypervisor.js';
import type { Device } from '../src/hypervisor/device.js';
import type { Guest } from '../src/hypervisor/guest.js';
import { EchoUplink } from '../src/uplink/echo.js';
import { VIF_DROP_COUNTERS, ENGINE_DROP_COUNTERS } from '../src/layout/counters.js';
import { createControl, createStats, requestStop, STAT_BYTES, STAT_FRAMES, type RttSummary } from './common.js';
import { createRawRing } from './raw-ring-worker.js';

/** A destination MAC no VIF owns: the switch sends such frames to the uplink (unknown unicast). */
export const UPLINK_DST = '02:be:ef:00:00:01';
/** Slots of the raw ring: the same as a VIF's default queue size, so both buffer alike. */
export const RAW_RING_SLOTS = 256;
/** Default spin budget of the device and echo port (DeviceOptions.spinUs); guests use it too. */
export const DEFAULT_SPIN_US = 100;

export interface Running {
  delivered(): { frames: number; bytes: number };
  /** Named drop counters that moved (svnic cases). */
  drops(): Record<string, number>;
  stop(): Promise<void>;
}

/** `spec`: a row the issue asked for; `diagnostic`: a row that explains a spec row. */
export type Group = 'spec' | 'diagnostic';

export interface ThroughputCase {
  kind: 'throughput';
  group: Group;
  name: string;
  frameBytes: number;
  threads: number;
  threadNote: string;
  start(): Promise<Running>;
}

export interface LatencyCase {
  kind: 'latency';
  group: Group;
  name: string;
  frameBytes: number;
  threads: number;
  threadNote: string;
  spinUs: number | null;
  run(warmupMs: number, durationMs: number): Promise<RttSummary & LatencyExtra>;
}

/** What svnic latency cases add to the pinger's summary: drops and how often threads slept. */
export interface LatencyExtra {
  drops?: Record<string, number>;
  /** Pings sent in the whole trial (warm-up included), the pinger's sleeps in nic.waitSync(). */
  pings?: number;
  slept?: number;
  /** Times the device engine went to sleep during the whole trial. */
  engineSleeps?: number;
}

export type Case = ThroughputCase | LatencyCase;

const here = (p: string): URL => new URL(p, import.meta.url);
const guestModule = (name: string): string => here(`./guests/${name}.js`).href;

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function startWorker(file: string, data: Record<string, unknown>, transfer: TransferListItem[] = []): Worker {
  const w = new Worker(here(file), { workerData: data, transferList: transfer });
  w.on('error', (e) => console.error(`bench worker ${file} failed:`, e));
  return w;
}

async function stopWorkers(ctl: SharedArrayBuffer, workers: Worker[]): Promise<void> {
  requestStop(ctl);
  await new Promise((r) => setTimeout(r, 20));
  await Promise.all(workers.map((w) => w.terminate()));
}

function statsReader(stats: SharedArrayBuffer): () => { frames: number; bytes: number } {
  const f = new Float64Array(stats);
  return () => ({ frames: f[STAT_FRAMES]!, bytes: f[STAT_BYTES]! });
}

// ---- baselines ---------------------------------------------------------------------------------

export function rawRing(frameBytes: number): ThroughputCase {
  return {
    kind: 'throughput', group: 'spec', name: 'raw-ring', frameBytes, threads: 2,
    threadNote: 'producer worker + consumer worker, both busy-polling',
    async start() {
      const ctl = createControl();
      const stats = createStats();
      const ring = createRawRing(RAW_RING_SLOTS, frameBytes);
      const common = { kind: 'raw-ring', ring, ctl, stats, frameBytes };
      const workers = [
        startWorker('./raw-ring-worker.js', { ...common, role: 'consumer' }),
        startWorker('./raw-ring-worker.js', { ...common, role: 'producer' }),
      ];
      return { delivered: statsReader(stats), drops: () => ({}), stop: () => stopWorkers(ctl, workers) };
    },
  };
}

export function messagePort(frameBytes: number): ThroughputCase {
  return {
    kind: 'throughput', group: 'spec', name: 'messageport', frameBytes, threads: 2,
    threadNote: 'producer worker (never yields) + consumer worker (event loop)',
    async start() {
      const ctl = createControl();
      const stats = createStats();
      const ch = new MessageChannel();
      const common = { kind: 'messageport', ctl, stats, frameBytes };
      const workers = [
        startWorker('./messageport-worker.js', { ...common, role: 'consumer', port: ch.port2 }, [ch.port2]),
        startWorker('./messageport-worker.js', { ...common, role: 'producer', port: ch.port1 }, [ch.port1]),
      ];
      return { delivered: statsReader(stats), drops: () => ({}), stop: () => stopWorkers(ctl, workers) };
    },
  };
}

export function rawRingRtt(): LatencyCase {
  return {
    kind: 'latency', group: 'spec', name: 'raw-ring-rtt', frameBytes: 64, threads: 2, spinUs: null,
    threadNote: 'ping worker + pong worker, both busy-polling',
    async run(warmupMs, durationMs) {
      const ctl = createControl();
      const a = createRawRing(8, 64);
      const b = createRawRing(8, 64);
      const common = { kind: 'raw-ring', ctl, frameBytes: 64, warmupMs, durationMs };
      const pong = startWorker('./raw-ring-worker.js', { ...common, role: 'pong', ring: a, back: b });
      const ping = startWorker('./raw-ring-worker.js', { ...common, role: 'ping', ring: a, back: b });
      try {
        return await withTimeout(new Promise<RttSummary>((r) => ping.once('message', r)), warmupMs + durationMs + 15000, 'raw-ring ping');
      } finally {
        await stopWorkers(ctl, [ping, pong]);
      }
    },
  };
}

export function messagePortRtt(): LatencyCase {
  return {
    kind: 'latency', group: 'spec', name: 'messageport-rtt', frameBytes: 64, threads: 2, spinUs: null,
    threadNote: 'ping worker + pong worker, each answering from its event loop',
    async run(warmupMs, durationMs) {
      const ctl = createControl();
      const ch = new MessageChannel();
      const common = { kind: 'messageport', ctl, frameBytes: 64, warmupMs, durationMs };
      const pong = startWorker('./messageport-worker.js', { ...common, role: 'pong', port: ch.port2 }, [ch.port2]);
      const ping = startWorker('./messageport-worker.js', { ...common, role: 'ping', port: ch.port1 }, [ch.port1]);
      try {
        return await withTimeout(new Promise<RttSummary>((r) => ping.once('message', r)), warmupMs + durationMs + 15000, 'messageport ping');
      } finally {
        await stopWorkers(ctl, [ping, pong]);
      }
    },
  };
}

// ---- svnic ---------------------------------------------------------------------------------------

function svnicDrops(dev: Device): Record<string, number> {
  const out: Record<string, number> = {};
  const d = dev.deviceCounters();
  for (const k of ENGINE_DROP_COUNTERS) if (d[k]) out[k] = d[k];
  for (const v of dev.vifs()) {
    const c = v.counters();
    for (const k of VIF_DROP_COUNTERS) if (c[k]) out[`${v.id}.${k}`] = c[k];
  }
  return out;
}

async function shutdown(hv: Hypervisor, ctl: SharedArrayBuffer | null, guests: Guest[], extra: (() => Promise<void>)[] = []): Promise<void> {
  if (ctl) requestStop(ctl);
  await Promise.all(guests.map((g) => withTimeout(g.done(), 5000, `guest ${g.id}`).catch(() => {})));
  for (const f of extra) await f().catch(() => {});
  await hv.stop();
}

export function svnicUplink(frameBytes: number): ThroughputCase {
  return {
    kind: 'throughput', group: 'spec', name: 'svnic-uplink', frameBytes, threads: 2,
    threadNote: 'sender guest + 1 device engine, both busy-polling; the null uplink has no thread',
    async start() {
      const ctl = createControl();
      const hv = new Hypervisor();
      const dev = await hv.createDevice({ engines: 1 });
      const g = await hv.startGuest({ name: 'tx', module: guestModule('sender'), args: { ctl, frameBytes, batch: 32 } });
      await hv.createVifFor(g, dev, { name: 'tx' });
      g.send({ dst: UPLINK_DST });
      return {
        delivered: () => {
          const c = dev.deviceCounters();
          return { frames: c.uplink_tx_frames, bytes: c.uplink_tx_bytes };
        },
        drops: () => svnicDrops(dev),
        stop: () => shutdown(hv, ctl, [g]),
      };
    },
  };
}

/** Spin budgets (µs) of a vif2vif throughput case; undefined: guests poll forever, device default. */
export interface Vif2VifPlan {
  sender?: number;
  receiver?: number;
  device?: number;
  /** VIF queue size (default 256). */
  queueSize?: number;
}

export function svnicVif2Vif(frameBytes: number, name = 'svnic-vif2vif', plan: Vif2VifPlan = {}, group: Group = 'spec'): ThroughputCase {
  const busy = plan.sender === undefined && plan.receiver === undefined;
  return {
    kind: 'throughput', group, name, frameBytes, threads: 3,
    threadNote: busy
      ? 'sender guest + 1 device engine + receiver guest, all busy-polling: 3 threads time-share 2 cores'
      : `sender guest + 1 device engine + receiver guest, 3 threads on 2 cores; spin µs before sleeping: sender ${plan.sender ?? 'forever'}, receiver ${plan.receiver ?? 'forever'}, device ${plan.device ?? 'default'}`,
    async start() {
      const ctl = createControl();
      const hv = new Hypervisor();
      const dev = await hv.createDevice(plan.device === undefined ? { engines: 1 } : { engines: 1, spinUs: plan.device });
      const rx = await hv.startGuest({ name: 'rx', module: guestModule('sink'), args: { ctl, batch: 64, spinUs: plan.receiver } });
      const tx = await hv.startGuest({ name: 'tx', module: guestModule('sender'), args: { ctl, frameBytes, batch: 32, spinUs: plan.sender } });
      const rxVif = await hv.createVifFor(rx, dev, { name: 'rx', queueSize: plan.queueSize });
      await hv.createVifFor(tx, dev, { name: 'tx', queueSize: plan.queueSize });
      tx.send({ dst: rxVif.mac });
      return {
        delivered: () => {
          const c = rxVif.counters();
          return { frames: c.rx_frames, bytes: c.rx_bytes };
        },
        drops: () => svnicDrops(dev),
        stop: () => shutdown(hv, ctl, [tx, rx]),
      };
    },
  };
}

/**
 * Who spins in a latency case, in µs of polling before sleeping. `undefined` for the device
 * means its own default (DeviceOptions.spinUs); guests have no default, so the standard cases give
 * them the device's default too. The echo uplink runs inside the engine and has no spin of its own.
 */
export interface SpinPlan {
  device?: number;
  pinger: number;
  ponger?: number;
}

const us = (x: number | undefined): string => (x === undefined ? `${DEFAULT_SPIN_US} (default)` : String(x));
const deviceOpts = (p: SpinPlan) => (p.device === undefined ? { engines: 1 } : { engines: 1, spinUs: p.device });

/** (a) guest <-> echo port at the uplink: guest -> engine (uplink echoes inside it) -> guest. */
export function echoRtt(name: string, plan: SpinPlan, group: Group = 'spec'): LatencyCase {
  return {
    kind: 'latency', group, name, frameBytes: 64, threads: 2, spinUs: plan.pinger,
    threadNote: `pinger guest + 1 device engine (the echo uplink runs inside it); spin µs: guest ${plan.pinger}, device ${us(plan.device)}`,
    async run(warmupMs, durationMs) {
      const hv = new Hypervisor();
      const dev = await hv.createDevice(deviceOpts(plan));
      const echo = await EchoUplink.attach(dev);
      const g = await hv.startGuest({ name: 'ping', module: guestModule('pinger'), args: { spinUs: plan.pinger, warmupMs, durationMs, frameBytes: 64 } });
      try {
        await hv.createVifFor(g, dev, { name: 'ping' });
        g.send({ dst: UPLINK_DST });
        const r = await withTimeout(g.report<RttSummary & LatencyExtra & { kind: string }>((x) => x.kind === 'rtt'), warmupMs + durationMs + 15000, 'echo pinger');
        return { ...r, drops: svnicDrops(dev), engineSleeps: dev.deviceCounters().sleeps };
      } finally {
        await shutdown(hv, null, [g], [() => echo.stop()]);
      }
    },
  };
}

/** (b) guest <-> guest through the device: A -> engine -> B -> engine -> A. */
export function vif2vifRtt(name: string, plan: SpinPlan, group: Group = 'spec'): LatencyCase {
  const ponger = plan.ponger ?? plan.pinger;
  return {
    kind: 'latency', group, name, frameBytes: 64, threads: 3, spinUs: plan.pinger,
    threadNote: `pinger guest + 1 device engine + ponger guest: 3 threads on 2 cores; spin µs: pinger ${plan.pinger}, device ${us(plan.device)}, ponger ${ponger}`,
    async run(warmupMs, durationMs) {
      const ctl = createControl();
      const hv = new Hypervisor();
      const dev = await hv.createDevice(deviceOpts(plan));
      const b = await hv.startGuest({ name: 'pong', module: guestModule('ponger'), args: { ctl, spinUs: ponger } });
      const a = await hv.startGuest({ name: 'ping', module: guestModule('pinger'), args: { spinUs: plan.pinger, warmupMs, durationMs, frameBytes: 64 } });
      try {
        const bVif = await hv.createVifFor(b, dev, { name: 'pong' });
        await hv.createVifFor(a, dev, { name: 'ping' });
        a.send({ dst: bVif.mac });
        const r = await withTimeout(a.report<RttSummary & LatencyExtra & { kind: string }>((x) => x.kind === 'rtt'), warmupMs + durationMs + 15000, 'vif2vif pinger');
        return { ...r, drops: svnicDrops(dev), engineSleeps: dev.deviceCounters().sleeps };
      } finally {
        await shutdown(hv, ctl, [a, b]);
      }
    },
  };
}

/** The spec's two settings: every thread with the default spin budget, or spinning disabled. */
const SPIN: SpinPlan = { pinger: DEFAULT_SPIN_US };
const NO_SPIN: SpinPlan = { device: 0, pinger: 0, ponger: 0 };

export const svnicEchoRtt = (spin: boolean): LatencyCase => echoRtt(`svnic-echo-rtt-${spin ? 'spin' : 'nospin'}`, spin ? SPIN : NO_SPIN);
export const svnicVif2VifRtt = (spin: boolean): LatencyCase => vif2vifRtt(`svnic-vif2vif-rtt-${spin ? 'spin' : 'nospin'}`, spin ? SPIN : NO_SPIN);

// ---- diagnostics: rows that separate svnic's own cost from three threads sharing two cores ------

/** One guest owns both VIFs and sends from one to the other: VIF-to-VIF with 2 threads. */
export function svnicVif2VifOneGuest(frameBytes: number): ThroughputCase {
  return {
    kind: 'throughput', group: 'diagnostic', name: 'svnic-vif2vif-1guest', frameBytes, threads: 2,
    threadNote: 'one guest owning both VIFs (sends on one, receives on the other) + 1 device engine, both busy-polling',
    async start() {
      const ctl = createControl();
      const hv = new Hypervisor();
      const dev = await hv.createDevice({ engines: 1 });
      const g = await hv.startGuest({ name: 'loop', module: guestModule('loop'), args: { ctl, frameBytes, batch: 32 } });
      await hv.createVifFor(g, dev, { name: 'a' });
      const b = await hv.createVifFor(g, dev, { name: 'b' });
      g.send({ dst: b.mac });
      return {
        delivered: () => {
          const c = b.counters();
          return { frames: c.rx_frames, bytes: c.rx_bytes };
        },
        drops: () => svnicDrops(dev),
        stop: () => shutdown(hv, ctl, [g]),
      };
    },
  };
}

/** VIF to VIF between two guests that poll up to 20 µs and then sleep (3 threads, 2 cores). */
export const svnicVif2VifYield = (frameBytes: number): ThroughputCase =>
  svnicVif2Vif(frameBytes, 'svnic-vif2vif-yield', { sender: 20, receiver: 20 }, 'diagnostic');

/** One guest, two VIFs, 64 B ping through the device to itself: the device's hop with 2 threads. */
export function loopRtt(): LatencyCase {
  return {
    kind: 'latency', group: 'diagnostic', name: 'svnic-loop-rtt-spin', frameBytes: 64, threads: 2, spinUs: DEFAULT_SPIN_US,
    threadNote: `one guest owning two VIFs (sends on one, waits on the other) + 1 device engine; spin µs: guest ${DEFAULT_SPIN_US}, device ${DEFAULT_SPIN_US} (default)`,
    async run(warmupMs, durationMs) {
      const hv = new Hypervisor();
      const dev = await hv.createDevice({ engines: 1 });
      const g = await hv.startGuest({ name: 'loop', module: guestModule('pinger'), args: { spinUs: DEFAULT_SPIN_US, warmupMs, durationMs, frameBytes: 64, loop: true } });
      try {
        await hv.createVifFor(g, dev, { name: 'a' });
        const b = await hv.createVifFor(g, dev, { name: 'b' });
        g.send({ dst: b.mac });
        const r = await withTimeout(g.report<RttSummary & LatencyExtra & { kind: string }>((x) => x.kind === 'rtt'), warmupMs + durationMs + 15000, 'loop pinger');
        return { ...r, drops: svnicDrops(dev), engineSleeps: dev.deviceCounters().sleeps };
      } finally {
        await shutdown(hv, null, [g]);
      }
    },
  };
}

