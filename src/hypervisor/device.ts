/**
 * A self-virtualized device as the control plane manages it: its engines, VIF slots and their
 * memory, the MAC table, the uplink rings and the shared counters.
 */
import { EventEmitter } from 'node:events';
import { MessageChannel, Worker } from 'node:worker_threads';
import { createWakePage, MAX_VIFS_PER_DEVICE, W } from '../layout/doorbell.js';
import { createFrameRing } from '../layout/frame-ring.js';
import {
  createCounters, readVifCounters, readEngineCounters, unaccountedFrames, vifBalance, vifRowOffset, VIF_ROW,
  type VifCounter, type EngineCounter,
} from '../layout/counters.js';
import { vifLayout, bufferBytesFor, maxFrameBytes } from '../layout/vif.js';
import { MAX_SEGMENT } from '../device/switch.js';
import type { Coalesce } from '../device/engine-vif.js';
import type { IrqMode } from '../device/engine.js';
import type { RingEnd } from '../device/engine-protocol.js';
import { EngineHandle } from './engine-handle.js';
import { createQosTable, emptyQosRow, writeQosPort, writeQosRow, type QosPort } from '../layout/qos.js';
import { admit, devicePort, vifQosRow, type DeviceQos, type VifQos } from './qos.js';
import { SvnicError } from './errors.js';
import {
  Vif, DEVICE_FEATURES, MAX_MTU, checkMtu, checkSettings, checkUnicastMac, createVifMemory, type VifSettings,
} from './vif.js';

export { Vif, DEVICE_FEATURES, MAX_MTU, MIN_MTU, createVifMemory, type VifSettings, type VifState } from './vif.js';

export interface DeviceOptions {
  name?: string;
  /** Engine worker threads (default 1). */
  engines?: number;
  /** VIF slots (default 1024, at most 1024). */
  maxVifs?: number;
  interruptMode?: IrqMode;
  /** Busy-poll this long after the last work before sleeping (default 100 µs; 0 = never spin). */
  spinUs?: number;
  /** Longest sleep before an engine sweeps all VIFs (default 100 ms). */
  sweepMs?: number;
  /** Frames per source per loop iteration (default 32). */
  batch?: number;
  /** Slots of each engine-to-engine and uplink ring (default 512). */
  ringSlots?: number;
  /** Interrupt router spin in hypervisor mode (default 0: it sleeps between interrupts). */
  routerSpinUs?: number;
  /** Uplink capacity, priority share, DRR quantum (docs/qos.md). */
  qos?: DeviceQos;
}

export interface VifOptions {
  name?: string;
  mac?: string;
  mtu?: number;
  queueSize?: number;
  segment?: number;
  linkUp?: boolean;
  promiscuous?: boolean;
  multicast?: string[];
  coalesce?: Coalesce;
  /** Pin to an engine; default: the engine with the fewest VIFs. */
  engine?: number;
  /** Weight, priority, rate limits, guarantee (docs/qos.md). */
  qos?: VifQos;
  // ---- for a driver domain's NIC (src/baseline/); ordinary VIFs leave these out ----
  /** Anti-spoofing (default true); false lets the VIF send any source MAC (a bridge port). */
  spoofCheck?: boolean;
  /** A wake page (layout/doorbell.ts) woken with every interrupt of this VIF. */
  interruptWake?: SharedArrayBuffer;
}


let deviceSeq = 0;

export class Device extends EventEmitter {
  readonly name: string;
  /** Process-wide device number: part of default MACs, so devices never hand out the same one. */
  private readonly seq: number;
  readonly maxVifs: number;
  readonly interruptMode: IrqMode;
  readonly ringSlots: number;
  readonly counterSab: SharedArrayBuffer;
  /** QoS table (layout/qos.ts): written here, read by the engines without messages. */
  readonly qosSab: SharedArrayBuffer;
  private qosPort: QosPort;
  private readonly f64: Float64Array;
  private readonly engines: EngineHandle[];
  private readonly slots: (Vif | null)[];
  private readonly vifsById = new Map<string, Vif>();
  private router: { worker: Worker; page: SharedArrayBuffer; port: import('node:worker_threads').MessagePort } | null = null;
  private stopped = false;
  private stopping: Promise<void> | null = null;
  /**
   * Conservation-law share of destroyed VIFs: their counter rows are zeroed for reuse, so their
   * balance is kept here (see unaccounted()).
   */
  private retiredBalance = 0;
  /** Removals in progress, so that unplug and guest-exit reclaim can race safely. */
  private readonly removing = new Map<Vif, Promise<void>>();
  private vifSeq = 0;
  uplinkKind = 'null';
  /** Serialises control operations so concurrent calls see a consistent table. */
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(opts: DeviceOptions) {
    super();
    const engines = opts.engines ?? 1;
    const maxVifs = opts.maxVifs ?? MAX_VIFS_PER_DEVICE;
    if (!Number.isInteger(engines) || engines < 1 || engines > 16) throw new SvnicError('BAD_OPTION', `engines must be an integer in 1..16, got ${engines}`);
    if (!Number.isInteger(maxVifs) || maxVifs < 1 || maxVifs > MAX_VIFS_PER_DEVICE) throw new SvnicError('BAD_OPTION', `maxVifs must be in 1..${MAX_VIFS_PER_DEVICE}, got ${maxVifs}`);
    const num = (v: number | undefined, name: string, min: number, max: number, int = false): void => {
      if (v !== undefined && (!Number.isFinite(v) || v < min || v > max || (int && !Number.isInteger(v)))) {
        throw new SvnicError('BAD_OPTION', `${name} must be ${int ? 'an integer' : 'a number'} in ${min}..${max}, got ${v}`);
      }
    };
    num(opts.spinUs, 'spinUs', 0, 1e6);
    num(opts.routerSpinUs, 'routerSpinUs', 0, 1e6);
    num(opts.sweepMs, 'sweepMs', 1, 60_000);
    num(opts.batch, 'batch', 1, 4096, true);
    num(opts.ringSlots, 'ringSlots', 2, 65536, true);
    if (opts.ringSlots !== undefined && (opts.ringSlots & (opts.ringSlots - 1)) !== 0) {
      throw new SvnicError('BAD_OPTION', `ringSlots must be a power of two, got ${opts.ringSlots}`);
    }
    this.seq = deviceSeq++;
    this.name = opts.name ?? `dev${this.seq}`;
    this.maxVifs = maxVifs;
    this.interruptMode = opts.interruptMode ?? 'direct';
    this.ringSlots = opts.ringSlots ?? 512;
    this.counterSab = createCounters(maxVifs, engines);
    this.qosPort = devicePort(opts.qos);
    this.qosSab = createQosTable(maxVifs, engines);
    writeQosPort(this.qosSab, this.qosPort);
    this.f64 = new Float64Array(this.counterSab);
    this.slots = new Array(maxVifs).fill(null);
    let irqPage: SharedArrayBuffer | undefined;
    if (this.interruptMode === 'hypervisor') {
      irqPage = createWakePage(maxVifs);
      const ch = new MessageChannel();
      const worker = new Worker(new URL('./irq-router.js', import.meta.url), {
        workerData: { page: irqPage, port: ch.port2, spinUs: opts.routerSpinUs ?? 0 },
        transferList: [ch.port2],
        name: `svnic-irq-router-${this.name}`,
      });
      this.router = { worker, page: irqPage, port: ch.port1 };
    }
    this.engines = [];
    for (let i = 0; i < engines; i++) {
      const eng = new EngineHandle({
        index: i, engines, maxVifs, doorbell: createWakePage(maxVifs), control: createWakePage(32), counters: this.counterSab,
        irqMode: this.interruptMode, irqPage, spinUs: opts.spinUs ?? 100, sweepMs: opts.sweepMs ?? 100,
        batch: opts.batch ?? 32, qos: this.qosSab,
      });
      eng.onEvent = (ev) => {
        const v = this.slots[ev.slot];
        if (!v || v.state === 'destroyed') return;
        if (ev.type === 'needs-reset') {
          v.state = 'needs-reset';
          v.needsResetReason = ev.reason;
          this.emit('needs-reset', { vif: v.id, reason: ev.reason });
        } else {
          v.state = 'ready';
          v.needsResetReason = '';
          this.emit('recovered', { vif: v.id });
        }
      };
      this.engines.push(eng);
    }
  }

  static async create(opts: DeviceOptions = {}): Promise<Device> {
    const d = new Device(opts);
    await d.wireEngines();
    return d;
  }

  get engineCount(): number {
    return this.engines.length;
  }

  /** Send a command to the engine serving `v` (VM VIFs: vhost-user start/stop). */
  engineCall<T>(v: Vif, cmd: Parameters<EngineHandle['call']>[0]): Promise<T> {
    return this.engines[v.engine]!.call<T>(cmd);
  }

  engineDoorbell(i: number): SharedArrayBuffer {
    return this.engines[i]!.doorbell;
  }

  /** Create the engine-to-engine rings: one SPSC ring per ordered pair. */
  private async wireEngines(): Promise<void> {
    const n = this.engines.length;
    const maxFrame = maxFrameBytes(MAX_MTU);
    const rings: (SharedArrayBuffer | null)[][] = [];
    for (let i = 0; i < n; i++) {
      rings.push([]);
      for (let j = 0; j < n; j++) rings[i]!.push(i === j ? null : createFrameRing(this.ringSlots, maxFrame));
    }
    await Promise.all(this.engines.map((e, i) => e.call({
      op: 'fwd',
      out: rings[i]!.map((r, j) => (r ? { ring: r, wake: this.engines[j]!.doorbell } : null)),
      in: rings.map((row) => row[i]).filter((r): r is SharedArrayBuffer => r !== null),
    })));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => {});
    return p;
  }

  private live(): void {
    if (this.stopping) throw new SvnicError('DEVICE_STOPPED', `device ${this.name} is stopped; create a new one`);
  }

  vif(id: string): Vif {
    const v = this.vifsById.get(id);
    if (!v) throw new SvnicError('NO_SUCH_VIF', `device ${this.name} has no VIF "${id}"; list VIFs with device.vifs()`);
    return v;
  }

  vifs(): Vif[] {
    return [...this.vifsById.values()];
  }

  createVif(opts: VifOptions = {}): Promise<Vif> {
    return this.serial(async () => {
      this.live();
      const slot = this.slots.indexOf(null);
      if (slot < 0) throw new SvnicError('DEVICE_FULL', `device ${this.name} has all ${this.maxVifs} VIF slots in use; destroy a VIF or create the device with a larger maxVifs`);
      const mtu = opts.mtu ?? 1500;
      const queueSize = opts.queueSize ?? 256;
      const segment = opts.segment ?? 0;
      const mac = (opts.mac ?? this.autoMac(slot)).toLowerCase();
      checkMtu(mtu);
      if (!Number.isInteger(queueSize) || queueSize < 2 || queueSize > 32768 || (queueSize & (queueSize - 1)) !== 0) {
        throw new SvnicError('BAD_QUEUE_SIZE', `queueSize must be a power of two in 2..32768, got ${queueSize}`);
      }
      if (!Number.isInteger(segment) || segment < 0 || segment > MAX_SEGMENT) throw new SvnicError('BAD_SEGMENT', `segment must be an integer in 0..${MAX_SEGMENT}, got ${segment}`);
      checkUnicastMac(mac);
      for (const v of this.vifsById.values()) {
        if (v.segment === segment && v.mac === mac) throw new SvnicError('DUPLICATE_MAC', `MAC ${mac} is already used by VIF "${v.id}" in segment ${segment}; choose another MAC`);
      }
      const settings: Required<VifSettings> = {
        mac, mtu, linkUp: opts.linkUp ?? true, promiscuous: opts.promiscuous ?? false,
        multicast: (opts.multicast ?? []).map((m) => m.toLowerCase()), coalesce: opts.coalesce ?? { frames: 1, usecs: 0 },
        qos: {},
      };
      checkSettings(settings);
      const id = opts.name ?? `vif${this.vifSeq++}`;
      if (this.vifsById.has(id)) throw new SvnicError('BAD_OPTION', `a VIF named "${id}" already exists on ${this.name}`);
      const engine = opts.engine ?? this.leastLoadedEngine();
      if (!Number.isInteger(engine) || engine < 0 || engine >= this.engines.length) throw new SvnicError('BAD_OPTION', `engine must be in 0..${this.engines.length - 1}, got ${engine}`);
      const qosRow = vifQosRow(opts.qos, id);
      this.admitQos(this.qosPort, id, qosRow.minBps);
      settings.qos = structuredClone(opts.qos ?? {});
      const sab = createVifMemory(slot, queueSize, mtu, mac);
      const v = new Vif(this, id, slot, engine, sab, mac, mtu, segment, queueSize, settings);
      writeQosRow(this.qosSab, slot, qosRow); // before the engine gets the VIF: it reads the row on add
      this.slots[slot] = v;
      this.vifsById.set(id, v);
      try {
        if (this.router) await this.routerCall({ op: 'map', slot, vif: sab, wake: opts.interruptWake });
        await this.engines[engine]!.call({
          op: 'add-vif',
          spec: { slot, sab, queueSize, mac, mtu, segment, linkUp: settings.linkUp, promiscuous: settings.promiscuous,
            multicast: settings.multicast, coalesce: settings.coalesce, deviceFeatures: DEVICE_FEATURES,
            spoofCheck: opts.spoofCheck ?? true, interruptWake: opts.interruptWake },
        });
        await this.pushFdb();
      } catch (e) {
        writeQosRow(this.qosSab, slot, emptyQosRow());
        this.slots[slot] = null; // no phantom VIF holding a slot or a MAC
        this.vifsById.delete(id);
        v.state = 'destroyed';
        throw e;
      }
      return v;
    });
  }

  /** Remove a VIF from its engine (frames its guest queued but the device never took: tx_unplugged). */
  destroyVif(id: string): Promise<void> {
    return this.removeVif(this.vif(id));
  }

  /** Idempotent removal: a second call (unplug racing a guest's exit) waits for the first. */
  removeVif(v: Vif): Promise<void> {
    if (v.state === 'destroyed') return Promise.resolve();
    const pending = this.removing.get(v);
    if (pending) return pending;
    const p = this.serial(async () => {
      this.vifsById.delete(v.id);
      if (!this.stopped) {
        await this.pushFdb();
        const r = await this.engines[v.engine]!.call<{ countedTo: number }>({ op: 'remove-vif', slot: v.slot }).catch(() => ({ countedTo: -1 }));
        v.countedTo = r.countedTo;
        if (this.router) await this.routerCall({ op: 'unmap', slot: v.slot });
      }
      // The engine no longer writes this row: keep the VIF's final counts and zero the row for reuse.
      v.finalCounters = this.vifCounters(v.slot);
      this.retiredBalance += vifBalance(v.finalCounters);
      this.f64.fill(0, vifRowOffset(v.slot), vifRowOffset(v.slot) + VIF_ROW);
      writeQosRow(this.qosSab, v.slot, emptyQosRow());
      this.slots[v.slot] = null;
      v.state = 'destroyed';
      this.removing.delete(v);
      this.emit('vif-destroyed', v);
    });
    this.removing.set(v, p);
    return p;
  }

  /** Change MAC, MTU, link, filters or coalescing while traffic flows. */
  setVif(id: string, change: VifSettings): Promise<Vif> {
    return this.serial(async () => {
      this.live();
      const v = this.vif(id);
      const next = { ...v.settings, ...change };
      if (change.mac !== undefined) {
        next.mac = change.mac.toLowerCase();
        checkUnicastMac(next.mac);
        for (const o of this.vifsById.values()) {
          if (o !== v && o.segment === v.segment && o.mac === next.mac) throw new SvnicError('DUPLICATE_MAC', `MAC ${next.mac} is already used by VIF "${o.id}"`);
        }
      }
      if (change.mtu !== undefined) {
        checkMtu(change.mtu);
        if (bufferBytesFor(change.mtu) > vifLayout(v.queueSize, v.bufferMtu).bufferBytes) {
          throw new SvnicError('BAD_MTU', `VIF "${id}" was created with buffers for MTU ${v.bufferMtu}; to raise it to ${change.mtu}, destroy and recreate the VIF with mtu: ${change.mtu}`);
        }
      }
      if (change.multicast) next.multicast = change.multicast.map((m) => m.toLowerCase());
      checkSettings(next);
      const { qos, ...rest } = change;
      const qosRow = qos !== undefined ? vifQosRow(qos, id) : null;
      if (qos !== undefined) next.qos = structuredClone(qos);
      if (qosRow) this.admitQos(this.qosPort, id, qosRow.minBps);
      v.settings = next;
      v.mac = next.mac;
      v.mtu = next.mtu;
      // QoS goes through the QoS table: the engine picks it up on its next iteration, no message.
      if (qosRow) writeQosRow(this.qosSab, v.slot, qosRow);
      if (Object.keys(rest).length === 0) return v;
      await this.engines[v.engine]!.call({ op: 'change-vif', change: { slot: v.slot, ...rest, mac: change.mac && next.mac, multicast: change.multicast && next.multicast } });
      if (change.mac !== undefined) await this.pushFdb();
      return v;
    });
  }

  /**
   * Change the device's QoS (uplink capacity, priority share, DRR quantum) under traffic. A
   * capacity below the guarantees already given is refused (QOS_OVERCOMMIT).
   */
  setQos(q: DeviceQos): Promise<void> {
    return this.serial(async () => {
      this.live();
      const port = devicePort(q);
      this.admitQos(port, null, 0);
      this.qosPort = port;
      writeQosPort(this.qosSab, port);
    });
  }

  get qos(): DeviceQos {
    const p = this.qosPort;
    return { capacityBitsPerSec: p.capacityBps, priorityShare: p.priorityShare, quantumBytes: p.quantum };
  }

  /** Admission control with VIF `id` guaranteed `bps` (replacing its current guarantee). */
  private admitQos(port: QosPort, id: string | null, bps: number): void {
    const all = [...this.vifsById.values()].filter((o) => o.id !== id)
      .map((o) => ({ vif: o.id, bps: o.settings.qos.guaranteedBitsPerSec ?? 0 }));
    if (id !== null) all.push({ vif: id, bps });
    admit(this.name, port, all);
  }

  private autoMac(slot: number): string {
    const d = this.seq & 0xff;
    return `02:53:${d.toString(16).padStart(2, '0')}:00:${((slot >> 8) & 0xff).toString(16).padStart(2, '0')}:${(slot & 0xff).toString(16).padStart(2, '0')}`;
  }

  private leastLoadedEngine(): number {
    const load = new Array(this.engines.length).fill(0);
    for (const v of this.vifsById.values()) load[v.engine]++;
    return load.indexOf(Math.min(...load));
  }

  private async pushFdb(): Promise<void> {
    const entries = [...this.vifsById.values()].map((v) => ({ segment: v.segment, mac: v.mac, slot: v.slot }));
    const slotEngine = this.slots.map((v) => (v && this.vifsById.has(v.id) ? v.engine : -1));
    if (this.stopped) return;
    await Promise.all(this.engines.map((e) => e.call({ op: 'fdb', entries, slotEngine })));
  }

  private routerCall(cmd: import('./irq-router.js').RouterCommand): Promise<void> {
    const r = this.router!;
    return new Promise((resolve) => {
      r.port.once('message', () => resolve());
      r.worker.once('exit', () => resolve()); // a router that is gone has nothing to unmap
      r.port.postMessage(cmd);
      const p = new Int32Array(r.page);
      Atomics.store(p, W.CONTROL, 1);
      Atomics.add(p, W.WAKE, 1);
      Atomics.notify(p, W.WAKE, 1);
    });
  }

  /**
   * Give engine `i` its uplink rings (used by uplinks; null toUplink = counted sink). With
   * `reflect`, the engine itself echoes every frame sent to the uplink back into the device.
   */
  async attachUplink(i: number, toUplink: RingEnd | null, fromUplink: SharedArrayBuffer[], reflect = false): Promise<void> {
    this.live();
    await this.engines[i]!.call({ op: 'uplink', toUplink, fromUplink, reflect });
  }

  /** Give engine `i` a capture ring and the shared per-slot capture flags (capture/vif-capture.ts). */
  async attachCapture(i: number, ring: import('../capture/capture-ring.js').CaptureRingSpec, slots: SharedArrayBuffer): Promise<void> {
    this.live();
    await this.engines[i]!.call({ op: 'capture', ring, slots });
  }

  /** Wait until every engine has applied all earlier commands (a barrier, not a drain). */
  async sync(): Promise<void> {
    await Promise.all(this.engines.map((e) => e.call({ op: 'sync' })));
  }

  vifCounters(slot: number): Record<VifCounter, number> {
    return readVifCounters(this.f64, slot);
  }

  engineCounters(i: number): Record<EngineCounter, number> {
    return readEngineCounters(this.f64, this.maxVifs, i);
  }

  /** Sum of all engines' counters. */
  deviceCounters(): Record<EngineCounter, number> {
    const sum = this.engineCounters(0);
    for (let i = 1; i < this.engines.length; i++) {
      const c = this.engineCounters(i);
      for (const k of Object.keys(sum) as EngineCounter[]) sum[k] += c[k];
    }
    return sum;
  }

  /**
   * The switch's conservation law (see device/switch.ts), for a quiet device:
   * frames in + flood copies - outcomes. Zero means every frame is delivered or counted.
   */
  unaccounted(): number {
    return unaccountedFrames(this.f64, this.maxVifs, this.engines.length) + this.retiredBalance;
  }

  /** Stop the engines. New operations fail at once; those already queued finish first. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = this.serial(async () => {
      this.stopped = true;
      await Promise.all(this.engines.map((e) => e.stop()));
      if (this.router) {
        await this.routerCall({ op: 'stop' });
        await this.router.worker.terminate();
      }
      this.emit('stopped');
    });
    return this.stopping;
  }
}

