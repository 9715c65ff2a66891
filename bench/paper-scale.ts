/**
 * Scalability, item 3 of `svnic bench paper`: one device with up to 1024 VIFs.
 *  - time to create them (control plane + engine, one by one as a user would);
 *  - memory per VIF: the VIF's SharedArrayBuffer (layout/vif.ts) and the process's resident-set
 *    growth per VIF (pages the kernel actually backs);
 *  - CPU of the idle device: every VIF has a live driver (initialised, buffers posted) and nobody
 *    sends; this process's CPU time over a window, with the engine's sleeps, wake-ups and sweeps;
 *  - aggregate throughput with 64 active guests relative to 1 guest (64 B frames to the peer
 *    host, both paths, alternating).
 */
import { Hypervisor } from '../src/hypervisor/hypervisor.js';
import { VirtioNetDriver } from '../src/guest/driver.js';
import { vifLayout } from '../src/layout/vif.js';
import { cpuBetween, cpuSample } from './sysinfo.js';
import { median } from './common.js';
import { Topology, PATHS, type Path } from './paper-topology.js';
import { throughputTrial } from './paper-trials.js';

export interface ScaleResult {
  vifs: number;
  queueSize: number;
  createMs: number;
  createUsPerVif: number;
  sabBytesPerVif: number;
  /** Resident-set growth per VIF; noisy (other memory freed meanwhile can make it negative). */
  rssBytesPerVif: number;
  /** process.memoryUsage().arrayBuffers growth per VIF (the SharedArrayBuffers' backing stores). */
  arrayBufferBytesPerVif: number;
  idleWindowMs: number;
  idleCores: number;
  idleEngineWakeupsPerS: number;
  idleEngineSweepsPerS: number;
  /** 64 B aggregate throughput to the peer host with 1 and with `manyGuests` guests, per path. */
  manyGuests: number;
  throughput: Record<Path, { oneGuestGbps: number; manyGuestsGbps: number; relative: number; oneGuestMpps: number; manyGuestsMpps: number }>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runScale(opts: {
  vifs: number; queueSize: number; idleMs: number; manyGuests: number; rounds: number; warmupMs: number; durationMs: number;
  log: (l: string) => void;
}): Promise<ScaleResult> {
  const { log } = opts;
  const hv = new Hypervisor();
  const dev = await hv.createDevice({ name: 'scale', maxVifs: opts.vifs });
  let createMs = 0;
  let rssPer = 0;
  let abPer = 0;
  let idle = { cores: NaN, wakeups: NaN, sweeps: NaN };
  try {
    const rss0 = process.memoryUsage().rss;
    const ab0 = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    const vifs = [];
    for (let i = 0; i < opts.vifs; i++) vifs.push(await dev.createVif({ queueSize: opts.queueSize }));
    createMs = performance.now() - t0;
    const drivers = vifs.map((v) => new VirtioNetDriver(v.grant()));
    await dev.sync();
    await sleep(50);
    for (const d of drivers) d.pollRx(); // finish the reset handshake: negotiate, post buffers, DRIVER_OK
    await dev.sync();
    await sleep(300);
    rssPer = (process.memoryUsage().rss - rss0) / opts.vifs;
    abPer = (process.memoryUsage().arrayBuffers - ab0) / opts.vifs;
    const c0 = dev.deviceCounters();
    const a = cpuSample();
    await sleep(opts.idleMs);
    const b = cpuSample();
    const c1 = dev.deviceCounters();
    const s = opts.idleMs / 1000;
    idle = { cores: cpuBetween(a, b).selfCores, wakeups: (c1.wakeups - c0.wakeups) / s, sweeps: (c1.sweeps - c0.sweeps) / s };
    log(`  scale: ${opts.vifs} VIFs created in ${createMs.toFixed(0)} ms; idle device: ${idle.cores} cores, ${idle.sweeps.toFixed(1)} sweeps/s`);
  } finally {
    await hv.stop();
  }
  const tp = {} as ScaleResult['throughput'];
  const samples: Record<Path, { one: number[]; many: number[]; oneM: number[]; manyM: number[] }> = {
    svnic: { one: [], many: [], oneM: [], manyM: [] }, 'driver-domain': { one: [], many: [], oneM: [], manyM: [] },
  };
  for (const [n, key] of [[1, 'one'], [opts.manyGuests, 'many']] as const) {
    const topo: Record<Path, Topology> = {
      svnic: await Topology.build('svnic', n, 'direct', 64),
      'driver-domain': await Topology.build('driver-domain', n, 'direct', 64),
    };
    try {
      for (const p of PATHS) await throughputTrial(topo[p], 64, opts.warmupMs, opts.durationMs / 2).catch(() => {}); // compile first
      for (let r = 0; r < opts.rounds; r++) {
        for (const p of r % 2 ? [...PATHS].reverse() : PATHS) {
          const x = await throughputTrial(topo[p], 64, opts.warmupMs, opts.durationMs);
          samples[p][key].push(x.gbps);
          samples[p][key === 'one' ? 'oneM' : 'manyM'].push(x.mpps);
          log(`  scale: ${p.padEnd(13)} ${String(n).padStart(3)} guests  64 B  ${x.mpps.toFixed(3)} Mpps ${x.gbps.toFixed(3)} Gbit/s`);
        }
      }
    } finally {
      for (const t of Object.values(topo)) await t.stop();
    }
  }
  for (const p of PATHS) {
    const one = median(samples[p].one);
    const many = median(samples[p].many);
    tp[p] = { oneGuestGbps: one, manyGuestsGbps: many, relative: many / one, oneGuestMpps: median(samples[p].oneM), manyGuestsMpps: median(samples[p].manyM) };
  }
  return {
    vifs: opts.vifs, queueSize: opts.queueSize, createMs, createUsPerVif: (createMs * 1000) / opts.vifs,
    sabBytesPerVif: vifLayout(opts.queueSize, 1500).byteLength, rssBytesPerVif: rssPer, arrayBufferBytesPerVif: abPer,
    idleWindowMs: opts.idleMs, idleCores: idle.cores, idleEngineWakeupsPerS: idle.wakeups, idleEngineSweepsPerS: idle.sweeps,
    manyGuests: opts.manyGuests, throughput: tp,
  };
}
