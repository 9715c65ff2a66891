/**
 * A device engine: the paper's microengine. It owns a set of VIFs and runs the data path for them:
 * finds work through its doorbell page, takes frames from guests, switches them, places them into
 * guests, the uplink or other engines, and raises interrupts. One loop iteration is `step(now)`;
 * `run()` adds polling and sleeping. The class does not depend on being in a worker, so unit tests
 * drive it synchronously.
 *
 * No locks: every ring has one producer and one consumer (ARCHITECTURE.md rule 1). Each iteration
 * does bounded work per source (rule 2) and publishes indices once per batch.
 */
import { W, ring as ringDoorbell, drainRung, summaryMaskFor, wake } from '../layout/doorbell.js';
import { EC, VC, engineRowOffset } from '../layout/counters.js';
import { H, i32, maxFrameBytes } from '../layout/vif.js';
import { NET_HDR_BYTES, NET_HDR_F_NEEDS_CSUM, MAX_GSO_FRAME } from '../virtio/constants.js';
import { routeOffloaded } from './offload.js';
import { EngineVif, VifState, type VifSpec, type Coalesce } from './engine-vif.js';
import { MacTable, macHi, macLo, type MacEntry } from './mac-table.js';
import { TX_EMPTY, TX_VIOLATION, RX_VIOLATION, RX_OK } from './virtio-net-device.js';
import { Switch } from './switch.js';
import { EngineQos } from './qos/engine-qos.js';
import { rotateLeft } from './rotate.js';
import { CaptureTap, DIR_IN, DIR_OUT } from '../capture/capture-ring.js';
import { vmDevice, vmSignal } from '../vhost-user/engine-vm.js';
import type { VmRings } from '../vhost-user/session.js';

export type IrqMode = 'direct' | 'hypervisor';

/** How long an engine whose guests wait only for uplink room sleeps before looking again (ms). */
export const UPLINK_NAP_MS = 0.05;
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

export class Engine {
  readonly cfg: EngineConfig;
  readonly db: Int32Array;
  private readonly ctl: Int32Array;
  /** SUMMARY bits that name real bitmap words; a guest may set the others. */
  private readonly summaryMask: number;
  readonly c: Float64Array;
  readonly ec: number; // base index of this engine's counter row
  readonly vifs: (EngineVif | undefined)[];
  /** VIFs that have or may have guest-TX work (EngineQos takes them over when QoS is on). */
  active: EngineVif[] = [];
  private dirty: EngineVif[] = [];
  private held: EngineVif[] = [];
  readonly sw: Switch;
  /** Engine-private copy of the frame being switched: header at 0, frame at 12 (4 mod 8). */
  private readonly staging: Uint8Array;
  private readonly staging32: Int32Array;
  private readonly irqPage: Int32Array | null;
  /** QoS (device/qos/engine-qos.ts); null without a QoS table. */
  readonly qos: EngineQos | null;
  /** Bytes of the frames the last serviceFromGuest() passed to the switch. */
  takenBytes = 0;
  private idleSince = -1;
  private stopped = false;
  /** The last step served no VIF because the uplink ring was full (see uplinkRoom). */
  private uplinkBlocked = false;
  /** Engine clock when the uplink ring was first seen without room for a batch (-1: it has room). */
  private uplinkFullSince = -1;
  /** Called when the control word is set; the worker drains its MessagePort here. */
  /**
   * VIF capture (issue 4, capture/vif-capture.ts): frames of VIFs whose byte in `capSlots` is set
   * are copied into this engine's capture ring. Off: one byte load per frame.
   */
  capture: CaptureTap | null = null;
  capSlots: Uint8Array | null = null;
  onControl: () => void = () => {};
  onEvent: (e: EngineEvent) => void = () => {};

  constructor(cfg: EngineConfig) {
    this.cfg = cfg;
    this.db = new Int32Array(cfg.doorbell);
    this.ctl = new Int32Array(cfg.control);
    this.summaryMask = summaryMaskFor(cfg.maxVifs);
    this.c = new Float64Array(cfg.counters);
    this.ec = engineRowOffset(cfg.maxVifs, cfg.index);
    this.vifs = new Array(cfg.maxVifs).fill(undefined);
    this.irqPage = cfg.irqPage ? new Int32Array(cfg.irqPage) : null;
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
    v.vmCallFds = r.callFds;
    v.dev = vmDevice(r, v.mtu, v.linkUp, this.c, v.counterBase); // throws RangeError if rings are outside memory
    v.state = VifState.LIVE;
    v.batchFrames = 0;
    v.heldFrames = 0;
    v.irqHeld = false;
    this.kicked(v);
  }

  /** VM VIF: stop using its rings; returns last_avail of ring 0 (toGuest) and ring 1 (fromGuest). */
  vmStop(slot: number): [number, number] {
    const v = this.vifs[slot];
    if (!v) return [-1, -1];
    // The session closes the call fds after this returns: never write to them again.
    if (v.vmCallFds !== null) v.vmCallFds = [-1, -1];
    v.irqHeld = false;
    v.irqQueues = 0;
    const dev = v.dev;
    if (dev === null) return [-1, -1];
    dev.fromGuestQ.publishUsed();
    dev.toGuestQ.publishUsed();
    v.dev = null;
    if (v.state === VifState.LIVE) v.state = VifState.WAITING;
    this.active = this.active.filter((x) => x !== v);
    v.active = false;
    return [dev.toGuestQ.lastAvail, dev.fromGuestQ.lastAvail];
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
    const wasBroken = v.state === VifState.NEEDS_RESET;
    const live = v.syncStatus(this.c);
    if (v.needsReport) this.reportNeedsReset(v);
    else if (wasBroken && v.state !== VifState.NEEDS_RESET) this.onEvent({ type: 'recovered', slot: v.slot });
    if (live && !v.active) {
      v.active = true;
      this.active.push(v);
    }
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

  private markDirty(v: EngineVif): void {
    if (!v.dirty) {
      v.dirty = true;
      this.dirty.push(v);
    }
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

  /** Publish used rings of every VIF touched this iteration and decide their interrupts. */
  private flush(now: number): void {
    const d = this.dirty;
    for (let i = 0; i < d.length; i++) {
      const v = d[i]!;
      v.dirty = false;
      const dev = v.dev;
      if (dev === null) continue;
      dev.fromGuestQ.publishUsed();
      dev.toGuestQ.publishUsed();
      const want = dev.toGuestQ.wantsInterrupt();
      const wantFrom = dev.fromGuestQ.wantsInterrupt();
      if (want) v.irqQueues |= 1;
      if (wantFrom) v.irqQueues |= 2;
      if ((wantFrom || want) && !v.irqHeld) {
        v.irqHeld = true;
        v.irqSince = now;
        v.heldFrames = 0;
        if (!v.inHeld) {
          v.inHeld = true;
          this.held.push(v);
        }
      }
      if (v.irqHeld) v.heldFrames += v.batchFrames;
      v.batchFrames = 0;
    }
    d.length = 0;
    this.sw.publishRings();
  }

  /** Raise held interrupts whose frame count or time is up (coalescing, ARCHITECTURE.md). */
  private releaseHeld(now: number): void {
    const h = this.held;
    for (let i = 0; i < h.length; ) {
      const v = h[i]!;
      const co = v.coalesce;
      if (!v.irqHeld || v.heldFrames >= co.frames || (now - v.irqSince) * 1000 >= co.usecs) {
        if (v.irqHeld) this.raiseIrq(v); // else raised meanwhile (config change) or the VIF reset
        v.inHeld = false;
        h[i] = h[h.length - 1]!;
        h.pop();
      } else {
        i++;
      }
    }
  }

  private raiseIrq(v: EngineVif): void {
    // Frames that shared this interrupt beyond the first: interrupts saved by coalescing.
    if (v.irqHeld && v.heldFrames > 1) this.c[v.counterBase + VC.irq_coalesced] += v.heldFrames - 1;
    v.irqHeld = false;
    v.heldFrames = 0;
    this.c[v.counterBase + VC.irq_raised] += 1;
    if (v.vmCallFds !== null) {
      vmSignal(v.vmCallFds, v.irqQueues); // VM: its call eventfds (vhost-user)
      v.irqQueues = 0;
    } else if (this.irqPage !== null) {
      ringDoorbell(this.irqPage, v.slot); // hypervisor mode: pending bit + master notification
    } else {
      Atomics.add(v.header, i32(H.IRQ), 1);
      Atomics.notify(v.header, i32(H.IRQ), 1);
      if (v.irqWake !== null) wake(v.irqWake);
    }
  }

  // ---- polling and sleeping ----------------------------------------------------------------

  /** Is anything waiting that step() would handle? Used before sleeping. */
  private hasWork(): boolean {
    const db = this.db;
    return Atomics.load(db, W.SUMMARY) !== 0 || Atomics.load(this.ctl, W.CONTROL) !== 0 ||
      this.active.length !== 0 || this.sw.ringsPending() || (this.qos !== null && this.qos.hasWork());
  }

  /** Wake every VIF that has work or changed status; run after a sleep timed out. */
  sweep(): void {
    this.c[this.ec + EC.sweeps] += 1;
    for (let s = 0; s < this.vifs.length; s++) {
      const v = this.vifs[s];
      if (v === undefined) continue;
      if (v.state !== VifState.LIVE || (v.dev !== null && v.dev.fromGuestQ.pending() !== 0)) this.kicked(v);
    }
  }

  /** Milliseconds until the earliest held interrupt is due (Infinity if none). */
  private nextIrqDeadline(now: number): number {
    let t = Infinity;
    for (const v of this.held) if (v.irqHeld) t = Math.min(t, v.irqSince + v.coalesce.usecs / 1000 - now);
    return Math.max(t, 0.01);
  }

  /**
   * The engine thread's main loop: poll while busy, spin `spinUs`, then sleep on the wake word.
   * Every `sweepMs`, busy or idle, it sweeps all VIFs (bounds the effect of a lost doorbell).
   */
  run(): void {
    const c = this.c;
    const ec = this.ec;
    const db = this.db;
    const sweepMs = this.cfg.sweepMs;
    let last = performance.now();
    let lastSweep = last;
    let busy = false; // did the previous iteration find work?
    while (!this.stopped) {
      // One clock read per iteration: the time since the last read goes to busy or idle
      // according to what the previous iteration found.
      const now = performance.now();
      c[ec + (busy ? EC.busy_ns : EC.idle_ns)] += (now - last) * 1e6;
      last = now;
      if (now - lastSweep >= sweepMs) {
        lastSweep = now;
        this.sweep();
      }
      busy = this.step(now) !== 0;
      if (busy) {
        this.idleSince = -1;
        continue;
      }
      if (this.idleSince < 0) this.idleSince = now;
      // Spin only while waiting for input; waiting for uplink room is no reason to hold the CPU.
      if (!this.uplinkBlocked && (now - this.idleSince) * 1000 < this.cfg.spinUs) continue;
      // Going to sleep: announce it, then re-check every source (no lost wake-up; doorbell.ts).
      Atomics.store(db, W.SLEEPING, 1);
      const seen = Atomics.load(db, W.WAKE);
      // Guest frames waiting only for room on the uplink: nap briefly instead of spinning, so the
      // ring's consumer (often sharing this core) gets the CPU; any doorbell ends the nap.
      const blockedOnly = this.uplinkBlocked && Atomics.load(db, W.SUMMARY) === 0 &&
        Atomics.load(this.ctl, W.CONTROL) === 0 && !this.sw.ringsPending();
      if (!blockedOnly && this.hasWork()) {
        Atomics.store(db, W.SLEEPING, 0);
        continue;
      }
      const qosWait = this.qos !== null ? this.qos.nextDeadline(now) : Infinity;
      const timeout = blockedOnly ? UPLINK_NAP_MS : Math.min(this.nextIrqDeadline(now), lastSweep + sweepMs - now, qosWait);
      c[ec + EC.sleeps] += 1;
      const r = Atomics.wait(db, W.WAKE, seen, Math.max(timeout, 0));
      Atomics.store(db, W.SLEEPING, 0);
      if (r !== 'timed-out') c[ec + EC.wakeups] += 1;
      this.idleSince = -1;
    }
  }
}
