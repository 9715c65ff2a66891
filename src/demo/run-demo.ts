/**
 * `svnic demo`: one device, four isolate guests on one segment and one spoofing guest. The guests
 * exchange frames all-to-all, broadcast, run a ping-pong, and the spoofer's frames are blocked by
 * the device. Everything is measured from the device's shared counters and the guests' drivers.
 */
import { Hypervisor } from '../hypervisor/hypervisor.js';
import type { Guest } from '../hypervisor/guest.js';
import type { Vif } from '../hypervisor/device.js';
import type { IrqMode } from '../device/engine.js';
import { VIF_DROP_COUNTERS, ENGINE_DROP_COUNTERS } from '../layout/counters.js';
import type { DemoPhase, DemoReport } from '../guest/programs/demo.js';

export interface DemoOptions {
  guests: number;
  /** Frames each guest sends to each peer in the all-to-all phase. */
  frames: number;
  broadcasts: number;
  spoofs: number;
  pings: number;
  engines: number;
  interruptMode: IrqMode;
  spinUs: number;
  /** Descriptors per virtqueue: a deep receive queue rides out a guest being descheduled. */
  queueSize: number;
}

export const DEMO_DEFAULTS: DemoOptions = {
  guests: 4, frames: 20_000, broadcasts: 200, spoofs: 100, pings: 2000, engines: 1, interruptMode: 'direct', spinUs: 100, queueSize: 1024,
};

export interface DemoVifRow {
  vif: string;
  guest: string;
  mac: string;
  /** Frames the guest's driver put on its transmit ring. */
  sent: number;
  /** Frames the guest's driver took from its receive ring. */
  received: number;
  txAccepted: number;
  rxDelivered: number;
  drops: Record<string, number>;
}

export interface DemoResult {
  machine: { cpus: number; node: string };
  device: { engines: number; interruptMode: IrqMode; spinUs: number };
  vifs: DemoVifRow[];
  phases: {
    allToAll: { offered: number; frames: number; seconds: number; pps: number };
    broadcast: { sent: number; deliveredCopies: number };
    spoof: { attempted: number; blocked: number; receivedByVictims: number };
    pingPong: { pings: number; answered: number; rttP50us: number; rttP99us: number; rttMinUs: number; threads: string };
  };
  sent: number;
  delivered: number;
  toUplink: number;
  drops: Record<string, number>;
  floodCopies: number;
  /** sent + floodCopies - (delivered + toUplink + counted drops): must be 0. */
  unaccounted: number;
}

const pct = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function phase(guests: Guest[], msgs: DemoPhase[], name: string): Promise<DemoReport[]> {
  const before = guests.map((g) => g.reports.length);
  guests.forEach((g, i) => g.send(msgs[i]!));
  return Promise.all(guests.map((g, i) => g.report<DemoReport>((r) => r.phase === name && g.reports.indexOf(r) >= before[i]!)));
}

export async function runDemo(opts: DemoOptions = DEMO_DEFAULTS, log: (s: string) => void = () => {}): Promise<DemoResult> {
  const hv = new Hypervisor();
  try {
    const dev = await hv.createDevice({ name: 'demo', engines: opts.engines, interruptMode: opts.interruptMode, spinUs: opts.spinUs });
    const module = new URL('../guest/programs/demo.js', import.meta.url).href;
    const names = Array.from({ length: opts.guests }, (_, i) => String.fromCharCode(97 + i)); // a, b, c, d
    const guests: Guest[] = [];
    const vifs: Vif[] = [];
    for (const name of [...names, 'mallory']) {
      const g = await hv.startGuest({ name, module });
      const v = await hv.createVifFor(g, dev, { name: `vif-${name}`, queueSize: opts.queueSize });
      guests.push(g);
      vifs.push(v);
    }
    const honest = guests.slice(0, opts.guests);
    const honestVifs = vifs.slice(0, opts.guests);
    const mallory = guests[opts.guests]!;
    log(`device "demo": ${opts.engines} engine(s), ${opts.interruptMode} interrupts; guests ${names.join(', ')} and mallory, one VIF each`);

    // 1. all-to-all unicast
    const rxBefore = honestVifs.reduce((s, v) => s + v.counters().rx_frames, 0);
    const t0 = performance.now();
    const sentA = await phase(honest, honestVifs.map((v) => ({ phase: 'unicast', peers: honestVifs.filter((o) => o !== v).map((o) => o.mac), frames: opts.frames })), 'unicast');
    const seconds = (performance.now() - t0) / 1000;
    const moved = honestVifs.reduce((s, v) => s + v.counters().rx_frames, 0) - rxBefore;
    log(`all-to-all: ${moved} frames delivered in ${seconds.toFixed(2)} s`);

    // 2. broadcast
    const rxB = vifs.reduce((s, v) => s + v.counters().rx_frames, 0);
    const b = await phase(honest, honest.map(() => ({ phase: 'broadcast', frames: opts.broadcasts })), 'broadcast');
    await settle(dev, guests);
    const bcastCopies = vifs.reduce((s, v) => s + v.counters().rx_frames, 0) - rxB;

    // 3. spoofing: mallory claims a's MAC
    const victimRx = () => honest.reduce((s, g) => s + Number(latest(g)?.received['4'] ?? 0), 0);
    const [sp] = await phase([mallory], [{ phase: 'spoof', victim: honestVifs[0]!.mac, frames: opts.spoofs }], 'spoof');
    await settle(dev, guests);
    log(`spoofing: mallory sent ${sp!.sent} frames with ${honestVifs[0]!.mac} as source; blocked: ${vifs[opts.guests]!.counters().tx_spoofed_mac}`);

    // 4. ping-pong a <-> b: a spins, b sleeps on its interrupt (3 threads would not fit 2 cores)
    const pong = phase([honest[1]!], [{ phase: 'pong', count: opts.pings }], 'pong');
    const [ping] = await phase([honest[0]!], [{ phase: 'ping', peer: honestVifs[1]!.mac, count: opts.pings }], 'ping');
    await pong;
    const rtt = ping!.rttUs ?? [];
    log(`ping-pong: ${rtt.length}/${opts.pings} answered, RTT p50 ${pct(rtt, 50).toFixed(1)} µs, p99 ${pct(rtt, 99).toFixed(1)} µs`);

    const reports = await settle(dev, guests);
    const rows: DemoVifRow[] = vifs.map((v, i) => {
      const c = v.counters();
      const drops: Record<string, number> = {};
      for (const k of VIF_DROP_COUNTERS) if (c[k] !== 0) drops[k] = c[k];
      return { vif: v.id, guest: guests[i]!.id, mac: v.mac, sent: reports[i]!.nicSent, received: reports[i]!.nicReceived, txAccepted: c.tx_frames, rxDelivered: c.rx_frames, drops };
    });
    const d = dev.deviceCounters();
    const drops: Record<string, number> = {};
    for (const r of rows) for (const [k, n] of Object.entries(r.drops)) drops[k] = (drops[k] ?? 0) + n;
    for (const k of ENGINE_DROP_COUNTERS) if (d[k] !== 0) drops[k] = (drops[k] ?? 0) + d[k];
    const sent = rows.reduce((s, r) => s + r.sent, 0);
    const delivered = rows.reduce((s, r) => s + r.rxDelivered, 0);
    const dropTotal = Object.values(drops).reduce((s, n) => s + n, 0);
    const result: DemoResult = {
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      device: { engines: opts.engines, interruptMode: opts.interruptMode, spinUs: opts.spinUs },
      vifs: rows,
      phases: {
        allToAll: { offered: sentA.reduce((s, r) => s + r.sent, 0), frames: moved, seconds, pps: moved / seconds },
        broadcast: { sent: b.reduce((s, r) => s + r.sent, 0), deliveredCopies: bcastCopies },
        spoof: { attempted: sp!.sent, blocked: vifs[opts.guests]!.counters().tx_spoofed_mac, receivedByVictims: victimRx() },
        pingPong: { pings: opts.pings, answered: rtt.length, rttP50us: pct(rtt, 50), rttP99us: pct(rtt, 99), rttMinUs: Math.min(...rtt), threads: 'engine and pinger spinning, answering guest sleeping on its interrupt' },
      },
      sent,
      delivered,
      toUplink: d.uplink_tx_frames,
      drops,
      floodCopies: d.flood_copies,
      unaccounted: sent + d.flood_copies - (delivered + d.uplink_tx_frames + dropTotal),
    };
    for (const g of guests) g.send({ phase: 'exit' } satisfies DemoPhase);
    await Promise.all(guests.map((g) => g.done()));
    return result;
  } finally {
    await hv.stop();
  }
}

function latest(g: Guest): DemoReport | undefined {
  return g.reports[g.reports.length - 1] as DemoReport | undefined;
}

/**
 * Wait until the data path is quiet: every guest has read every frame the device delivered to it,
 * and the counters stop moving. Returns each guest's final report.
 */
async function settle(dev: import('../hypervisor/device.js').Device, guests: Guest[]): Promise<DemoReport[]> {
  let last = '';
  for (let round = 0; ; round++) {
    await dev.sync();
    const reports = await phase(guests, guests.map(() => ({ phase: 'report' })), 'report');
    const vifs = dev.vifs();
    const snap = JSON.stringify(vifs.map((v) => v.counters()));
    const caughtUp = guests.every((g, i) => reports[i]!.nicReceived === [...g.vifs][0]?.counters().rx_frames);
    if ((caughtUp && snap === last) || round > 200) return reports;
    last = snap;
    await new Promise((r) => setTimeout(r, 10));
  }
}
