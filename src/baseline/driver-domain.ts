/**
 * The driver-domain baseline: the paper's comparison point, Xen's split driver model. A guest on
 * this path gets no VIF on the device. Its unchanged VirtioNetDriver runs on a netif (netfront.ts)
 * whose queues netback serves in a separate driver-domain worker; netback grant-copies each frame
 * into driver-domain memory, a learning bridge switches it, and the driver domain sends it through
 * ONE ordinary VIF it owns on the svnic device (its "physical NIC", used non-virtualized like the
 * paper's dom0 used the IXP board). docs/baseline.md explains each difference from the direct path.
 *
 * Usage (the guest program is the same on both paths):
 *   const dd = await DriverDomain.create(hv, device);
 *   const netif = await dd.createVifFor(guest, { mac: '02:...' });
 *   ... netif.counters(), dd.unaccounted(), dd.bridgeCounters() ...
 *   await dd.stop();   // or hv.stop(): stopping the device stops its driver domain
 */
import { EventEmitter } from 'node:events';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { createWakePage, W } from '../layout/doorbell.js';
import {
  readEngineCounters, unaccountedFrames, vifBalance, vifRowOffset, VIF_ROW, type EngineCounter,
} from '../layout/counters.js';
import { createDriverDomainCounters, readBridgeCounters, type BridgeCounter } from '../layout/driver-domain.js';
import type { Hypervisor } from '../hypervisor/hypervisor.js';
import type { Device, Vif } from '../hypervisor/device.js';
import type { Guest } from '../hypervisor/guest.js';
import { DEVICE_FEATURES, checkMtu, checkUnicastMac, createVifMemory } from '../hypervisor/vif.js';
import { SvnicError } from '../hypervisor/errors.js';
import type { DriverDomainConfig } from './driver-domain-loop.js';
import type { DriverDomainCommand } from './driver-domain-worker.js';
import type { NetbackEvent } from './netback.js';
import { Netif } from './netfront.js';

export interface DriverDomainOptions {
  name?: string;
  /** Netif slots (default 256, at most 1024). */
  maxNetifs?: number;
  /** The driver domain's poll budget before sleeping, like DeviceOptions.spinUs (default: the same 100 µs). */
  spinUs?: number;
  sweepMs?: number;
  /** Frames per source per loop iteration (default 32, as the device). */
  batch?: number;
  /** Queue size of the driver domain's NIC VIF (default 256). */
  nicQueueSize?: number;
  /** MTU of the NIC VIF; netifs may not exceed it (default 1500). */
  nicMtu?: number;
  nicMac?: string;
  /** Bridge FDB size and ageing time (default 4096 entries, 300 s as 802.1D). */
  fdbCapacity?: number;
  fdbAgeMs?: number;
}

export interface NetifOptions {
  name?: string;
  mac?: string;
  mtu?: number;
  queueSize?: number;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
let ddSeq = 0;

export class DriverDomain extends EventEmitter {
  readonly name: string;
  readonly nic: Vif;
  readonly maxNetifs: number;
  readonly evtchn: SharedArrayBuffer;
  readonly f64: Float64Array;
  private readonly ctl: Int32Array;
  private readonly db: Int32Array;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextReq = 1;
  private failed: Error | null = null;
  private readonly exited: Promise<void>;
  private readonly slots: (Netif | null)[];
  private readonly byId = new Map<string, Netif>();
  private retiredBalance = 0;
  private seq = 0;
  private readonly ddNum: number;
  private stopping: Promise<void> | null = null;

  private constructor(private readonly hv: Hypervisor, readonly device: Device, nic: Vif, evtchn: SharedArrayBuffer, opts: DriverDomainOptions, maxNetifs: number) {
    super();
    this.ddNum = ddSeq++;
    this.name = opts.name ?? `dd${this.ddNum}`;
    this.nic = nic;
    this.maxNetifs = maxNetifs;
    this.evtchn = evtchn;
    const counters = createDriverDomainCounters(maxNetifs);
    this.f64 = new Float64Array(counters);
    this.slots = new Array(maxNetifs).fill(null);
    const control = createWakePage(32);
    this.ctl = new Int32Array(control);
    this.db = new Int32Array(evtchn);
    const cfg: DriverDomainConfig = {
      maxNetifs, evtchn, control, counters, nic: nic.grant(),
      spinUs: opts.spinUs ?? 100, sweepMs: opts.sweepMs ?? 100, batch: opts.batch ?? 32,
      fdbCapacity: opts.fdbCapacity ?? 4096, fdbAgeMs: opts.fdbAgeMs ?? 300_000,
    };
    const ch = new MessageChannel();
    this.port = ch.port1;
    this.worker = new Worker(new URL('./driver-domain-worker.js', import.meta.url), {
      workerData: { cfg, port: ch.port2 }, transferList: [ch.port2], name: `svnic-driver-domain-${this.name}`,
    });
    this.port.on('message', (m: { type: 'ack'; reqId: number; result?: unknown; error?: string } | { type: 'event'; event: NetbackEvent }) => {
      if (m.type === 'event') return this.onNetbackEvent(m.event);
      const p = this.pending.get(m.reqId);
      if (!p) return;
      this.pending.delete(m.reqId);
      if (m.error) p.reject(new SvnicError('DRIVER_DOMAIN_FAILED', `driver domain ${this.name} refused a command: ${m.error}`));
      else p.resolve(m.result);
    });
    this.exited = new Promise((resolve) => {
      this.worker.on('error', (e) => this.fail(e));
      this.worker.on('exit', () => {
        this.fail(new Error('driver domain exited'));
        this.port.close();
        resolve();
      });
    });
  }

  /**
   * Start a driver domain that owns one new VIF on `device` as its NIC. The VIF is promiscuous
   * (a bridge port sees every frame), sends any source MAC (spoofCheck off) and wakes the driver
   * domain's event-channel page with its interrupts.
   */
  static async create(hv: Hypervisor, device: Device, opts: DriverDomainOptions = {}): Promise<DriverDomain> {
    const maxNetifs = opts.maxNetifs ?? 256;
    if (!Number.isInteger(maxNetifs) || maxNetifs < 1 || maxNetifs > 1024) throw new SvnicError('BAD_OPTION', `maxNetifs must be an integer in 1..1024, got ${maxNetifs}`);
    const num = (v: number | undefined, name: string, min: number, max: number): void => {
      if (v !== undefined && (!Number.isFinite(v) || v < min || v > max)) throw new SvnicError('BAD_OPTION', `${name} must be a number in ${min}..${max}, got ${v}`);
    };
    num(opts.spinUs, 'spinUs', 0, 1e6);
    num(opts.sweepMs, 'sweepMs', 1, 60_000);
    num(opts.batch, 'batch', 1, 4096);
    num(opts.fdbCapacity, 'fdbCapacity', 1, 1 << 20);
    num(opts.fdbAgeMs, 'fdbAgeMs', 1, 1e9);
    const evtchn = createWakePage(maxNetifs);
    const nic = await device.createVif({
      name: `${opts.name ?? 'dd'}-nic${ddSeq}`, mac: opts.nicMac, mtu: opts.nicMtu ?? 1500, queueSize: opts.nicQueueSize ?? 256,
      promiscuous: true, spoofCheck: false, interruptWake: evtchn,
    });
    nic.guestId = `driver-domain`;
    const dd = new DriverDomain(hv, device, nic, evtchn, opts, maxNetifs);
    try {
      await dd.call({ op: 'sync' });
    } catch (e) {
      await dd.stop(); // gives the NIC VIF back
      throw e;
    }
    // The driver domain cannot outlive its NIC: stopping the device (or the hypervisor) stops it.
    device.once('stopped', () => void dd.stop());
    return dd;
  }

  private fail(e: Error): void {
    if (!this.failed) this.failed = e;
    for (const p of this.pending.values()) p.reject(new SvnicError('DRIVER_DOMAIN_FAILED', `driver domain ${this.name} stopped (${e.message}); create a new one`));
    this.pending.clear();
  }

  private call<T = unknown>(cmd: DistributiveOmit<DriverDomainCommand, 'reqId'>): Promise<T> {
    if (this.failed) return Promise.reject(new SvnicError('DRIVER_DOMAIN_FAILED', `driver domain ${this.name} is not running; create a new one`));
    const reqId = this.nextReq++;
    const p = new Promise<T>((resolve, reject) => this.pending.set(reqId, { resolve: resolve as (v: unknown) => void, reject }));
    this.port.postMessage({ ...cmd, reqId });
    Atomics.store(this.ctl, W.CONTROL, 1);
    Atomics.add(this.db, W.WAKE, 1);
    Atomics.notify(this.db, W.WAKE, 1);
    return p;
  }

  private onNetbackEvent(ev: NetbackEvent): void {
    const n = this.slots[ev.slot];
    if (!n) return;
    if (ev.type === 'needs-reset') {
      n.state = 'needs-reset';
      n.needsResetReason = ev.reason;
      this.emit('needs-reset', { vif: n.id, reason: ev.reason });
    } else {
      n.state = 'ready';
      n.needsResetReason = '';
      this.emit('recovered', { vif: n.id });
    }
  }

  netifs(): Netif[] {
    return [...this.byId.values()];
  }

  /** Create a netif (its memory and its netback); plug it into a guest with plug(). */
  async createVif(opts: NetifOptions = {}): Promise<Netif> {
    if (this.stopping) throw new SvnicError('DEVICE_STOPPED', `driver domain ${this.name} is stopped; create a new one`);
    const slot = this.slots.indexOf(null);
    if (slot < 0) throw new SvnicError('DEVICE_FULL', `driver domain ${this.name} has all ${this.maxNetifs} netif slots in use; create it with a larger maxNetifs`);
    const mtu = opts.mtu ?? this.nic.mtu;
    checkMtu(mtu);
    if (mtu > this.nic.mtu) throw new SvnicError('BAD_MTU', `a netif's MTU (${mtu}) may not exceed the driver domain NIC's (${this.nic.mtu}); create the driver domain with nicMtu: ${mtu}`);
    const queueSize = opts.queueSize ?? 256;
    if (!Number.isInteger(queueSize) || queueSize < 2 || queueSize > 32768 || (queueSize & (queueSize - 1)) !== 0) {
      throw new SvnicError('BAD_QUEUE_SIZE', `queueSize must be a power of two in 2..32768, got ${queueSize}`);
    }
    const d = this.ddNum & 0xff;
    const mac = (opts.mac ?? `02:dd:${d.toString(16).padStart(2, '0')}:00:${((slot >> 8) & 0xff).toString(16).padStart(2, '0')}:${(slot & 0xff).toString(16).padStart(2, '0')}`).toLowerCase();
    checkUnicastMac(mac);
    for (const n of this.byId.values()) if (n.mac === mac) throw new SvnicError('DUPLICATE_MAC', `MAC ${mac} is already used by netif "${n.id}"; choose another MAC`);
    const id = opts.name ?? `${this.name}-netif${this.seq++}`;
    if (this.byId.has(id)) throw new SvnicError('BAD_OPTION', `a netif named "${id}" already exists on ${this.name}`);
    const sab = createVifMemory(slot, queueSize, mtu, mac);
    const n = new Netif(this, id, slot, sab, mac, mtu, queueSize);
    this.slots[slot] = n;
    this.byId.set(id, n);
    try {
      await this.call({
        op: 'add-netif',
        spec: { slot, sab, queueSize, mac, mtu, segment: 0, linkUp: true, promiscuous: false, multicast: [],
          coalesce: { frames: 1, usecs: 0 }, deviceFeatures: DEVICE_FEATURES },
      });
    } catch (e) {
      this.slots[slot] = null;
      this.byId.delete(id);
      n.state = 'destroyed';
      throw e;
    }
    return n;
  }

  /** Grant a netif to a guest (hot-plug): the guest's ctx.vif() returns a VirtioNetDriver for it. */
  async plug(guest: Guest, n: Netif): Promise<void> {
    if (n.state === 'destroyed') throw new SvnicError('NO_SUCH_VIF', `netif ${n.id} was destroyed`);
    if (n.guestId !== null) throw new SvnicError('VIF_ALREADY_GRANTED', `netif ${n.id} is granted to guest ${n.guestId}; unplug it first`);
    if (!guest.running) throw new SvnicError('GUEST_EXITED', `guest ${guest.id} has exited; start a new guest`);
    n.guestId = guest.id;
    guest.once('exit', () => void this.removeVif(n));
    await guest.post({ type: 'grant', grant: n.grant() }, `granted:${n.id}`);
    if (!guest.running) await this.removeVif(n);
  }

  async createVifFor(guest: Guest, opts: NetifOptions = {}): Promise<Netif> {
    const n = await this.createVif(opts);
    try {
      await this.plug(guest, n);
    } catch (e) {
      await this.removeVif(n);
      throw e;
    }
    return n;
  }

  /** Hot-unplug: netback stops first (queued frames count as tx_unplugged), then the guest is told. */
  async unplug(n: Netif): Promise<void> {
    const g = n.guestId !== null ? this.hv.guests.get(n.guestId) : undefined;
    await this.removeVif(n);
    if (g?.running) await g.post({ type: 'revoke', vifId: n.id }, `revoked:${n.id}`);
    n.countLateFrames();
  }

  /** Remove a netif from netback and retire its counters (idempotent). */
  async removeVif(n: Netif): Promise<void> {
    if (n.state === 'destroyed') return;
    n.state = 'destroyed';
    this.byId.delete(n.id);
    if (!this.failed) {
      const r = await this.call<{ countedTo: number }>({ op: 'remove-netif', slot: n.slot }).catch(() => ({ countedTo: -1 }));
      n.countedTo = r.countedTo;
    }
    n.finalCounters = n.counters();
    this.retiredBalance += vifBalance(n.finalCounters);
    this.f64.fill(0, vifRowOffset(n.slot), vifRowOffset(n.slot) + VIF_ROW);
    this.slots[n.slot] = null;
  }

  /** The driver domain's own counters ("uplink" = its NIC): loops, sleeps, frames to/from the NIC, drops. */
  counters(): Record<EngineCounter, number> {
    return readEngineCounters(this.f64, this.maxNetifs, 0);
  }

  bridgeCounters(): Record<BridgeCounter, number> {
    return readBridgeCounters(this.f64, this.maxNetifs);
  }

  /**
   * The bridge's conservation law (as Device.unaccounted()), for a quiet driver domain: frames in
   * + flood copies - outcomes. Zero means every frame was delivered or counted.
   */
  unaccounted(): number {
    return unaccountedFrames(this.f64, this.maxNetifs, 1) + this.retiredBalance;
  }

  /** Wait until the worker has applied every earlier command. */
  async sync(): Promise<void> {
    await this.call({ op: 'sync' });
  }

  /** Stop the worker and give the NIC VIF back to the device. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const n of [...this.byId.values()]) await this.removeVif(n);
      if (!this.failed) await this.call({ op: 'stop' }).catch(() => {});
      await this.exited;
      await this.device.removeVif(this.nic).catch(() => {});
    })();
    return this.stopping;
  }
}
