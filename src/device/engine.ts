/**
 * A device engine: the paper's microengine. It owns a set of VIFs and runs the data path for them:
 * finds work through its doorbell page, takes frames from guests, switches them, places them into
 * guests, the uplink or other engines, and raises interrupts. One loop iteration is `step(now)`;
 * `run()` adds polling and sleeping (engine-loop.ts). Publishing used rings, interrupt coalescing
 * and delivery are in the base class (engine-irq.ts); a VM VIF's start and stop in
 * vhost-user/engine-vm.ts. The class does not depend on being in a worker, so unit tests drive it
 * synchronously.
 *
 * No locks: every ring has one producer and one consumer (ARCHITECTURE.md rule 1). Each iteration
 * does bounded work per source (rule 2) and publishes indices once per batch.
 */
import { W, drainRung, summaryMaskFor } from '../layout/doorbell.js';
import { EC, VC, engineRowOffset } from '../layout/counters.js';
import { maxFrameBytes } from '../layout/vif.js';
import { NET_HDR_BYTES, NET_HDR_F_NEEDS_CSUM, MAX_GSO_FRAME } from '../virtio/constants.js';
import { routeOffloaded } from './offload.js';
import { EngineVif, VifState, type VifSpec, type Coalesce } from './engine-vif.js';
import { MacTable, macHi, macLo, type MacEntry } from './mac-table.js';
import { TX_EMPTY, TX_VIOLATION, RX_VIOLATION, RX_OK } from './virtio-net-device.js';
import { Switch } from './switch.js';
import { EngineQos } from './qos/engine-qos.js';
import { rotateLeft } from './rotate.js';
import { CaptureTap, DIR_IN, DIR_OUT } from '../capture/capture-ring.js';
import { vmAttach, vmDetach } from '../vhost-user/engine-vm.js';
import type { VmRings } from '../vhost-user/session.js';
import { EngineIrq } from './engine-irq.js';
import { runEngine } from './engine-loop.js';

export { UPLINK_NAP_MS } from './engine-loop.js';

export type IrqMode = 'direct' | 'hypervisor';
/**
 * Backpressure has a limit: an uplink ring that stays full this long (ms) is treated as stalled
 * (its consumer died or hangs), and the engine takes guest frames again, dropping those for the
 * uplink (uplink_tx_full), so that VIF-to-VIF traffic on the engine is not held up behind it.
 */
export const UPLINK_STALL_MS = 50;

export interface EngineConfig {
  index: number;
  engines: number;
  maxVifs: number;
  doorbell: SharedArrayBuffer;
  /** Private wake-page-shaped page (never granted to guests) whose CONTROL word flags commands. */
  control: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  irqMode: IrqMode;
  /** Hypervisor mode: the interrupt router's wake page (pending vector + master notification). */
  irqPage?: SharedArrayBuffer;
  /** Keep polling this long after the last work before sleeping (0 = sleep at once). */
  spinUs: number;
  /** Sweep all VIFs this often, busy or idle (bounds the cost of a lost doorbell). */
  sweepMs: number;
  /** Frames taken from one source per iteration. */
  batch: number;
  /** The device's QoS table (layout/qos.ts); without it the engine never runs QoS. */
  qos?: SharedArrayBuffer;
}

export type EngineEvent =
  | { type: 'needs-reset'; slot: number; reason: string }
  | { type: 'recovered'; slot: number };

export interface VifChange {
  slot: number;
  mac?: string;
  mtu?: number;
  linkUp?: boolean;
  promiscuous?: boolean;
  multicast?: string[];
  coalesce?: Coalesce;
}

export class Engine extends EngineIrq {
  readonly cfg: EngineConfig;
  readonly db: Int32Array;
  /** The control page (read by step() and the run loop). */
  readonly ctl: Int32Array;
  /** SUMMARY bits that name real bitmap words; a guest may set the others. */
  private readonly summaryMask: number;
  readonly ec: number; // base index of this engine's counter row
  readonly vifs: (EngineVif | undefined)[];
  /** VIFs that have or may have guest-TX work (EngineQos takes them over when QoS is on). */
  active: EngineVif[] = [];
  readonly sw: Switch;
  /** Engine-private copy of the frame being switched: header at 0, frame at 12 (4 mod 8). */
  private readonly staging: Uint8Array;
  private readonly staging32: Int32Array;
  /** QoS (device/qos/engine-qos.ts); null without a QoS table. */
  readonly qos: EngineQos | null;
  /** Bytes of the frames the last serviceFromGuest() passed to the switch. */
  takenBytes = 0;
  /** Set by stop(); the run loop returns when it sees it. */
  stopped = false;
  /** The last step served no VIF because the uplink ring was full (see uplinkRoom). Read by the run loop. */
  uplinkBlocked = false;
  /** Engine clock when the uplink ring was first seen without room for a batch (-1: it has room). */
  private uplinkFullSince = -1;
  /**
   * VIF capture (issue 4, capture/vif-capture.ts): frames of VIFs whose byte in `capSlots` is set
   * are copied into this engine's capture ring. Off: one byte load per frame.
   */
  capture: CaptureTap | null = null;
  capSlots: Uint8Array | null = null;
  /** Called when the control word is set; the worker drains its MessagePort here. */
  onControl: () => void = () => {};
  onEvent: (e: EngineEvent) => void = () => {};

  constructor(cfg: EngineConfig) {
    super(cfg.counters, cfg.irqPage);
    this.cfg = cfg;
    this.db = new Int32Array(cfg.doorbell);
    this.ctl = new Int32Array(cfg.control);
    this.summaryMask = summaryMaskFor(cfg.maxVifs);
    this.ec = engineRowOffset(cfg.maxVifs, cfg.index);
    this.vifs = new Array(cfg.maxVifs).fill(undefined);
    // Room for a GSO frame (VM VIFs with offloads) as well as the largest MTU.
    this.staging = new Uint8Array(Math.ceil((NET_HDR_BYTES + Math.max(maxFrameBytes(9000), MAX_GSO_FRAME)) / 64) * 64);
    this.staging32 = new Int32Array(this.staging.buffer);
    this.sw = new Switch(this, cfg.index, cfg.engines, cfg.maxVifs);
    this.qos = cfg.qos ? new EngineQos(this, cfg.qos) : null;
  }

  // ---- control (called between iterations) -------------------------------------------------

  addVif(spec: VifSpec): void {
    const v = new EngineVif(spec); // its counter row was zeroed by the control plane
    this.vifs[spec.slot] = v;
    v.publishConfig();
    this.sw.rebuildSegments();
    this.qos?.attach(spec.slot);
    this.kicked(v); // the driver may have started before the VIF reached us
  }

  /**
   * Stop serving a VIF. Frames the guest queued and the device never took count as tx_unplugged.
   * Returns the guest transmit-ring position up to which frames are accounted (-1 if the queue
   * was not running), so the control plane can count frames the guest adds after this point.
   */
  removeVif(slot: number): { unsent: number; countedTo: number } {
    const v = this.vifs[slot];
    if (!v) return { unsent: 0, countedTo: -1 };
    const dev = v.dev;
    const unsent = dev ? dev.unsentFromGuest() : 0;
    if (dev) dev.fromGuestQ.publishUsed(), dev.toGuestQ.publishUsed();
    this.c[v.counterBase + VC.tx_unplugged] += unsent;
    this.qos?.forget(slot);
    this.vifs[slot] = undefined;
    this.active = this.active.filter((x) => x !== v);
    this.dirty = this.dirty.filter((x) => x !== v);
    this.held = this.held.filter((x) => x !== v);
    this.sw.rebuildSegments();
    return { unsent, countedTo: dev ? (dev.fromGuestQ.lastAvail + unsent) & 0xffff : -1 };
  }

  changeVif(ch: VifChange): void {
    const v = this.vifs[ch.slot];
    if (!v) return;
    if (ch.mac !== undefined) v.setMac(ch.mac);
    if (ch.mtu !== undefined) v.mtu = ch.mtu;
    if (ch.linkUp !== undefined) v.linkUp = ch.linkUp;
    if (ch.promiscuous !== undefined) v.promiscuous = ch.promiscuous;
    if (ch.multicast !== undefined) v.setMulticast(ch.multicast);
    if (ch.coalesce !== undefined) v.coalesce = ch.coalesce;
    if (v.dev) {
      v.dev.mtu = v.mtu;
      v.dev.linkUp = v.linkUp;
    }
    v.publishConfig();
    this.sw.rebuildSegments();
    if (v.dev) this.raiseIrq(v); // configuration change notification (virtio 1.2, 2.2)
  }

  /** VM VIF (vhost-user): serve the VM's rings in its mapped RAM (the session checked addresses). */
  vmStart(slot: number, r: VmRings): void {
    const v = this.vifs[slot];
    if (!v) throw new RangeError(`no VIF in slot ${slot}`);
    this.vmStop(slot);
    vmAttach(v, r, this.c); // throws RangeError if rings are outside memory
    this.kicked(v);
  }

  /** VM VIF: stop using its rings; returns last_avail of ring 0 (toGuest) and ring 1 (fromGuest). */
  vmStop(slot: number): [number, number] {
    const v = this.vifs[slot];
    if (!v) return [-1, -1];
    const lastAvail = vmDetach(v);
    if (lastAvail === null) return [-1, -1];
    this.active = this.active.filter((x) => x !== v);
    v.active = false;
    return lastAvail;
  }

  setFdb(entries: MacEntry[], slotEngine: number[]): void {
    this.sw.fdb = new MacTable(entries);
    this.sw.slotEngine.fill(-1);
    slotEngine.forEach((e, s) => (this.sw.slotEngine[s] = e));
  }

  stop(): void {
    this.stopped = true;
  }

  // ---- data path ---------------------------------------------------------------------------

  /** One iteration. Returns the number of frames and events handled (0 = idle). */
  step(now: number): number {
    const db = this.db;
    let work = 0;
    if (Atomics.load(this.ctl, W.CONTROL) !== 0) {
      Atomics.store(this.ctl, W.CONTROL, 0);
      this.onControl();
      work++;
    }
    if (Atomics.load(db, W.SUMMARY) !== 0) work += drainRung(db, this.summaryMask, this.onRung);
    const batch = this.cfg.batch;
    let waited = false;
    let served = 0;
    let firstSkipped = -1;
    const act = this.active;
    const q = this.qos;
    if (q !== null && q.check(now)) work += q.serviceFromGuest(now); // QoS: device/qos/engine-qos.ts
    else {
      if (this.uplinkFullSince >= 0 && this.sw.uplinkRoom() >= batch) this.uplinkFullSince = -1;
      for (let i = 0; i < act.length; ) {
        const v = act[i]!;
        if (this.sw.uplinkRoom() < batch && this.holdForUplink(now)) {
          // Backpressure: the uplink cannot take a batch; the VIF's frames wait in its ring.
          if (!waited) firstSkipped = i;
          waited = true;
          i++;
          continue;
        }
        const n = this.serviceFromGuest(v, batch, Infinity);
        served++;
        work += n;
        if (n < batch && !(v.dev !== null && v.dev.fromGuestQ.enableKicks())) {
          v.active = false;
          act[i] = act[act.length - 1]!;
          act.pop();
        } else i++;
      }
    }
    if (waited) {
      this.c[this.ec + EC.uplink_tx_waits] += 1;
      rotateLeft(act, firstSkipped); // the first skipped VIF goes first next time: no starvation
    }
    this.uplinkBlocked = waited && served === 0;
    work += this.sw.pollRings();
    this.flush(now);
    this.sw.publishRings();
    if (this.held.length !== 0) this.releaseHeld(now);
    this.c[this.ec + EC.loops] += 1;
    return work;
  }

  /** For QoS (engine-qos.ts): should frames for the uplink wait for room on its ring now? */
  uplinkWait(now: number): boolean {
    if (this.sw.uplinkRoom() >= this.cfg.batch) {
      this.uplinkFullSince = -1;
      return false;
    }
    return this.holdForUplink(now);
  }

  /** The uplink has no room for a batch: hold guest frames back, unless it has stalled (UPLINK_STALL_MS). */
  private holdForUplink(now: number): boolean {
    if (this.uplinkFullSince < 0) this.uplinkFullSince = now;
    return now - this.uplinkFullSince < UPLINK_STALL_MS;
  }

  /** A slot rang its doorbell: count it and follow the VIF (1), or count a spurious ring (0). */
  private readonly onRung = (slot: number): number => {
    const v = this.vifs[slot];
    if (v === undefined) {
      this.c[this.ec + EC.spurious_doorbells] += 1;
      return 0;
    }
    this.c[v.counterBase + VC.kicks] += 1;
    this.kicked(v);
    return 1;
  };

  /** A VIF rang (or was swept): follow its driver status and put it on the active list if live. */
  private kicked(v: EngineVif): void {
    const recovered = v.follow(this.c, this.active);
    if (v.needsReport) this.reportNeedsReset(v);
    else if (recovered) this.onEvent({ type: 'recovered', slot: v.slot });
  }

  /**
   * Take frames from a VIF's transmit queue and switch them: at most `maxFrames`, and no new frame
   * once `maxBytes` bytes were switched (QoS budgets; the last frame may overshoot). Sets takenBytes.
   */
  serviceFromGuest(v: EngineVif, maxFrames: number, maxBytes: number): number {
    const dev = v.dev;
    this.takenBytes = 0;
    if (dev === null) return 0;
    const st = this.staging;
    const st32 = this.staging32;
    const base = v.counterBase;
    const c = this.c;
    let done = 0;
    let bytes = 0;
    while (done < maxFrames && bytes < maxBytes) {
      const len = dev.fromGuest(st, st32);
      if (len === TX_EMPTY) break;
      if (len === TX_VIOLATION) {
        this.needsReset(v, dev.fromGuestQ.violation);
        break;
      }
      done++;
      if (len <= 0) continue; // dropped and counted by the device
      const f = NET_HDR_BYTES;
      if (this.capSlots !== null && this.capSlots[v.slot] !== 0) this.capture!.tap(st, f, len, (v.slot << 1) | DIR_IN);
      // Anti-spoofing on the device's private copy (ARCHITECTURE.md rule 6).
      if (v.spoofCheck && (macHi(st, f + 6) !== v.macHi || macLo(st, f + 6) !== v.macLo)) {
        c[base + VC.tx_spoofed_mac] += 1;
        continue;
      }
      if (macHi(st, f) === v.macHi && macLo(st, f) === v.macLo) {
        c[base + VC.tx_to_self] += 1;
        continue;
      }
      // Partial checksum or GSO (only VM VIFs that negotiated offloads get past headerOk with these).
      if ((st[0]! & NET_HDR_F_NEEDS_CSUM) !== 0 || st[1] !== 0) {
        if (routeOffloaded(this, v, st, st32, len)) continue;
      }
      c[base + VC.tx_frames] += 1;
      c[base + VC.tx_bytes] += len;
      bytes += len;
      this.sw.fromVif(v, st, st32, f, len);
    }
    this.takenBytes = bytes;
    if (done !== 0) {
      v.batchFrames += done;
      this.markDirty(v);
    }
    return done;
  }

  /** Place a frame into a local VIF (counted there on success or drop). */
  deliver(v: EngineVif, buf: Uint8Array, buf32: Int32Array, off: number, len: number, offloaded = false): void {
    const q = this.qos;
    // A VIF over its guest-RX limit: the frame waits in its hold queue (or is counted as dropped).
    // Offloaded frames (with their virtio header) never reach such a VIF: offload.ts routes around it.
    if (q !== null && !offloaded && q.rxLimited[v.slot] === 1 && !q.admitToGuest(v, buf, buf32, off, len)) return;
    this.placeToGuest(v, buf, buf32, off, len, offloaded);
  }

  /** deliver() without the guest-RX limit (EngineQos drains its hold queues through this). */
  placeToGuest(v: EngineVif, buf: Uint8Array, buf32: Int32Array, off: number, len: number, offloaded = false): void {
    const dev = v.dev;
    if (dev === null || v.state !== VifState.LIVE) {
      this.c[v.counterBase + VC.rx_not_ready] += 1;
      return;
    }
    const r = offloaded ? dev.toGuestOffloaded(buf, buf32, off, len) : dev.toGuest(buf, buf32, off, len);
    if (r === RX_VIOLATION) {
      // The frame is lost with the broken queue: count it as every later frame for this VIF will
      // be (rx_not_ready), so frames in = frames out + counted drops holds (ARCHITECTURE.md rule 8).
      this.c[v.counterBase + VC.rx_not_ready] += 1;
      this.needsReset(v, dev.toGuestQ.violation);
      return;
    }
    if (this.capSlots !== null && this.capSlots[v.slot] !== 0 && r === RX_OK) this.capture!.tap(buf, off, len, (v.slot << 1) | DIR_OUT);
    v.batchFrames++;
    this.markDirty(v);
  }

  private needsReset(v: EngineVif, violation: number): void {
    v.enterNeedsReset(`virtqueue violation ${violation}`);
    this.reportNeedsReset(v); // step() drops it from the active list: its dev is gone
  }

  private reportNeedsReset(v: EngineVif): void {
    v.needsReport = false;
    this.raiseIrq(v); // config change interrupt: the driver reads status and sees NEEDS_RESET
    this.onEvent({ type: 'needs-reset', slot: v.slot, reason: v.violationReason });
  }

  // ---- polling and sleeping ----------------------------------------------------------------

  /** Wake every VIF that has work or changed status; run after a sleep timed out. */
  sweep(): void {
    this.c[this.ec + EC.sweeps] += 1;
    for (let s = 0; s < this.vifs.length; s++) {
      const v = this.vifs[s];
      if (v === undefined) continue;
      if (v.state !== VifState.LIVE || (v.dev !== null && v.dev.fromGuestQ.pending() !== 0)) this.kicked(v);
    }
  }

  /** The engine thread's main loop (engine-loop.ts); returns after stop(). */
  run(): void {
    runEngine(this);
  }
}
