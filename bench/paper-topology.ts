/**
 * The set-up of one `svnic bench paper` configuration, for one path:
 *
 *   svnic:          N guests -- VIFs on the host device --wire-- peer device -- peer host guest
 *   driver-domain:  N guests -- netifs -- driver domain (netback, bridge) -- its NIC VIF on the
 *                   host device --wire-- peer device -- peer host guest
 *
 * The peer device and the peer host stand in for the paper's remote machine and are the same on
 * both paths. Both devices use the given interrupt mode (the driver domain's NIC interrupts go
 * the same way as the guests' VIF interrupts on the direct path). A topology is built once per
 * (interrupt mode, N) and kept while the trials of both paths alternate; between trials every
 * thread sleeps.
 */
import { Hypervisor } from '../src/hypervisor/hypervisor.js';
import type { Device } from '../src/hypervisor/device.js';
import type { Guest } from '../src/hypervisor/guest.js';
import type { IrqMode } from '../src/device/engine.js';
import { Wire } from '../src/uplink/wire.js';
import { DriverDomain } from '../src/baseline/driver-domain.js';
import { ENGINE_DROP_COUNTERS, VIF_DROP_COUNTERS } from '../src/layout/counters.js';
import { createControl, requestStop } from './common.js';
import { withTimeout } from './cases.js';

export type Path = 'svnic' | 'driver-domain';
export const PATHS: readonly Path[] = ['svnic', 'driver-domain'];

/** Spin budgets (µs) of every thread, the same on both paths. */
export const SPIN = { device: 100, driverDomain: 100, guest: 50, peer: 50, senderFull: 0 } as const;
export const PEER_MAC = '02:be:ef:00:00:01';
export const PEER_QUEUE = 4096;

const guestModule = (name: string): string => new URL(`./guests/${name}.js`, import.meta.url).href;

export class Topology {
  readonly hv = new Hypervisor();
  host!: Device;
  peerDev!: Device;
  dd: DriverDomain | null = null;
  readonly guests: Guest[] = [];
  peer!: Guest;
  /** Per guest index i: [2i] frames, [2i+1] bytes received by the peer host. */
  readonly peerStats = new Float64Array(new SharedArrayBuffer(8 * 512));
  private readonly peerCtl = createControl();

  private constructor(readonly path: Path, readonly n: number, readonly irqMode: IrqMode) {}

  /** Busy data-path threads while a trial runs (the main thread idles in its event loop). */
  get threads(): { total: number; note: string } {
    const routers = this.irqMode === 'hypervisor' ? 2 : 0;
    const dd = this.path === 'driver-domain' ? 1 : 0;
    return {
      total: this.n + 2 + dd + 1 + routers,
      note: `${this.n} guest(s) + 2 device engines (host, peer)${dd ? ' + driver domain' : ''} + peer host${routers ? ' + 2 interrupt routers' : ''}`,
    };
  }

  static async build(path: Path, n: number, irqMode: IrqMode, queueSize = 256): Promise<Topology> {
    const t = new Topology(path, n, irqMode);
    const hv = t.hv;
    t.host = await hv.createDevice({ name: `host-${path}-${irqMode}-${n}`, interruptMode: irqMode, spinUs: SPIN.device });
    t.peerDev = await hv.createDevice({ name: `peer-${path}-${irqMode}-${n}`, interruptMode: irqMode, spinUs: SPIN.device });
    await Wire.connect(t.host, t.peerDev);
    if (path === 'driver-domain') {
      t.dd = await DriverDomain.create(hv, t.host, { spinUs: SPIN.driverDomain, maxNetifs: Math.max(n, 1) });
    }
    t.peer = await hv.startGuest({
      name: `peer-${path}-${irqMode}-${n}`, module: guestModule('paper-peer'),
      args: { ctl: t.peerCtl, stats: t.peerStats.buffer, spinUs: SPIN.peer },
    });
    // The peer host stands in for a remote machine with its own CPU; here it shares the two cores,
    // so its receive queue is deep enough to ride out the time slices it does not get.
    await hv.createVifFor(t.peer, t.peerDev, { mac: PEER_MAC, queueSize: PEER_QUEUE });
    for (let i = 0; i < n; i++) {
      const g = await hv.startGuest({ name: `g${i}-${path}-${irqMode}-${n}`, module: guestModule('paper-guest') });
      t.guests.push(g);
      if (t.dd) {
        await t.dd.createVifFor(g, { queueSize });
      } else {
        await hv.createVifFor(g, t.host, { queueSize });
      }
    }
    t.peer.send('announce');
    await withTimeout(t.peer.report((r: { kind: string }) => r.kind === 'announced'), 10_000, 'peer announcement');
    await new Promise((r) => setTimeout(r, 20));
    return t;
  }

  /** Frames and bytes the peer host received, in total. */
  received(): { frames: number; bytes: number; perGuest: number[] } {
    const s = this.peerStats;
    let frames = 0;
    let bytes = 0;
    const perGuest: number[] = [];
    for (let i = 0; i < this.n; i++) {
      frames += s[2 * i]!;
      bytes += s[2 * i + 1]!;
      perGuest.push(s[2 * i + 1]!);
    }
    return { frames, bytes, perGuest };
  }

  /** Every named drop counter that is not zero, over both devices and the driver domain. */
  drops(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, d] of [['host', this.host], ['peerdev', this.peerDev]] as const) {
      const c = d.deviceCounters();
      for (const k of ENGINE_DROP_COUNTERS) if (c[k]) out[`${name}.${k}`] = c[k];
      for (const v of d.vifs()) {
        const vc = v.counters();
        for (const k of VIF_DROP_COUNTERS) if (vc[k]) out[`${name}.${v.id}.${k}`] = vc[k];
      }
    }
    if (this.dd) {
      const c = this.dd.counters();
      for (const k of ENGINE_DROP_COUNTERS) if (c[k]) out[`dd.${k}`] = c[k];
      for (const n of this.dd.netifs()) {
        const vc = n.counters();
        for (const k of VIF_DROP_COUNTERS) if (vc[k]) out[`dd.${n.id}.${k}`] = vc[k];
      }
    }
    return out;
  }

  /** Sum of the conservation-law balances (0 when quiet and nothing was lost uncounted). */
  unaccounted(): number {
    return this.host.unaccounted() + this.peerDev.unaccounted() + (this.dd ? this.dd.unaccounted() : 0);
  }

  async stop(): Promise<void> {
    requestStop(this.peerCtl);
    for (const g of this.guests) g.send({ cmd: 'exit' });
    await Promise.all([...this.guests, this.peer].map((g) => withTimeout(g.done(), 5000, `guest ${g.id}`).catch(() => g.terminate())));
    if (this.dd) await this.dd.stop();
    await this.hv.stop();
  }
}
