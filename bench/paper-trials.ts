/**
 * One measurement of `svnic bench paper` on one built topology (paper-topology.ts):
 *
 *  - throughput: every guest streams `frameBytes` frames to the peer host; after a warm-up the
 *    frames and bytes the peer host received are counted over a fixed window (delivered, never
 *    attempted), together with this process's CPU time (all threads: guests, engines, driver
 *    domain, peer host; process.cpuUsage()) for CPU per delivered packet;
 *  - latency: every guest ping-pongs with the peer host at low load (one frame in flight, a pause
 *    of GAP_US between pings, so every thread on the path has gone back to sleep); RTTs are
 *    measured inside the guests and merged.
 */
import { createControl, pct, requestStop } from './common.js';
import { withTimeout } from './cases.js';
import { cpuBetween, cpuSample } from './sysinfo.js';
import { PEER_MAC, SPIN, type Topology } from './paper-topology.js';

/** Pause between one guest's pings: longer than every spin budget, so each ping meets sleeping threads. */
export const GAP_US = 1000;

export interface ThroughputSample {
  gbps: number;
  mpps: number;
  minGuestGbps: number;
  maxGuestGbps: number;
  cpuNsPerPacket: number;
  selfCores: number;
  otherCores: number;
  error?: string;
}

export interface LatencySample {
  rttP50us: number;
  rttP99us: number;
  pings: number;
  lost: number;
  otherCores: number;
  error?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function throughputTrial(t: Topology, frameBytes: number, warmupMs: number, durationMs: number): Promise<ThroughputSample> {
  const ctl = createControl();
  const acks = t.guests.map((g) => {
    const k = g.reports.length;
    return g.report((r: { kind: string }) => r.kind === 'streamed' && g.reports.indexOf(r) >= k);
  });
  t.guests.forEach((g, i) => g.send({ cmd: 'stream', dst: PEER_MAC, frameBytes, index: i, ctl, spinUs: SPIN.senderFull }));
  try {
    await sleep(warmupMs);
    const a = t.received();
    const ca = cpuSample();
    await sleep(durationMs);
    const b = t.received();
    const cb = cpuSample();
    const s = (cb.at - ca.at) / 1000;
    const frames = b.frames - a.frames;
    const cpu = cpuBetween(ca, cb);
    const perGuest = b.perGuest.map((x, i) => ((x - a.perGuest[i]!) * 8) / s / 1e9);
    return {
      gbps: ((b.bytes - a.bytes) * 8) / s / 1e9,
      mpps: frames / s / 1e6,
      minGuestGbps: Math.min(...perGuest),
      maxGuestGbps: Math.max(...perGuest),
      cpuNsPerPacket: frames > 0 ? (cpu.selfCores * s * 1e9) / frames : NaN,
      selfCores: cpu.selfCores,
      otherCores: cpu.otherCores,
    };
  } finally {
    requestStop(ctl);
    await withTimeout(Promise.all(acks), 15_000, 'senders stopping');
    await sleep(30); // let the queues drain before the next trial
  }
}

export async function latencyTrial(t: Topology, frameBytes: number, warmupMs: number, durationMs: number, gapUs = GAP_US): Promise<LatencySample> {
  const done = t.guests.map((g) => {
    const k = g.reports.length;
    return g.report<{ kind: string; rtts: number[]; lost: number }>((r) => r.kind === 'pinged' && g.reports.indexOf(r) >= k);
  });
  const ca = cpuSample();
  t.guests.forEach((g, i) => g.send({
    cmd: 'ping', dst: PEER_MAC, frameBytes, index: i, warmupMs, durationMs, gapUs, spinUs: SPIN.guest,
  }));
  const reps = await withTimeout(Promise.all(done), warmupMs + durationMs + 20_000, 'pingers');
  const cb = cpuSample();
  const all: number[] = [];
  let lost = 0;
  for (const r of reps) {
    for (const x of r.rtts) all.push(x);
    lost += r.lost;
  }
  const sorted = Float64Array.from(all).sort();
  await sleep(20);
  return { rttP50us: pct(sorted, 0.5), rttP99us: pct(sorted, 0.99), pings: all.length, lost, otherCores: cpuBetween(ca, cb).otherCores };
}
