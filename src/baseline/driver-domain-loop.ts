/**
 * The driver domain's data path (Xen's dom0 running netback and a bridge): one loop that serves
 * every guest netif (netback.ts), switches in the bridge (bridge.ts) and drives the NIC (nic.ts),
 * with the device engine's discipline (ARCHITECTURE.md rules 1-4): batches of `batch` frames per
 * source, indices published and notifications sent once per iteration, busy-polling while there
 * is work, a `spinUs` budget, then EVENT_IDX re-arming and a sleep on one wake word that both the
 * guests' event channels and the NIC's interrupt ring. `step(now)` is one iteration and does not
 * depend on running in a worker, so unit tests drive it synchronously.
 *
 * The path of a guest frame to the wire: guest kick -> event channel -> this loop (grant copy into
 * a NIC transmit buffer, bridge) -> NIC kick -> device engine (copy into the engine, switch) ->
 * wire. Back: wire -> device engine -> NIC receive queue -> NIC interrupt -> this loop (bridge,
 * grant copy into the guest's receive queue) -> event channel -> guest. Compared with the direct
 * path that is one more thread, one more copy and one more notification each way.
 */
import { W, drainRung, summaryMaskFor } from '../layout/doorbell.js';
import { EC, VC, engineRowOffset } from '../layout/counters.js';
import { BC, bridgeRowOffset } from '../layout/driver-domain.js';
import type { EngineVif, VifSpec } from '../device/engine-vif.js';
import { macHi, macLo, parseMac } from '../device/mac-table.js';
import { TX_EMPTY, TX_VIOLATION } from '../device/virtio-net-device.js';
import type { VifGrant } from '../guest/driver.js';
import { Netback, type NetbackEvent } from './netback.js';
import { Bridge, portOf } from './bridge.js';
import { Fdb } from './fdb.js';
import { UPLINK_NAP_MS } from '../device/engine.js';
import { rotateLeft } from '../device/rotate.js';
import { DomNic } from './nic.js';

export interface DriverDomainConfig {
  maxNetifs: number;
  /** The event-channel page (a wake page) guests kick and the NIC interrupt wakes. */
  evtchn: SharedArrayBuffer;
  /** Private wake-page-shaped page whose CONTROL word flags control messages. */
  control: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  /** The driver domain's NIC: an ordinary VIF on the device. */
  nic: VifGrant;
  spinUs: number;
  sweepMs: number;
  batch: number;
  fdbCapacity: number;
  fdbAgeMs: number;
}

export class DriverDomainLoop {
  readonly cfg: DriverDomainConfig;
  readonly db: Int32Array;
  private readonly ctl: Int32Array;
  private readonly summaryMask: number;
  readonly c: Float64Array;
  private readonly ec: number;
  private readonly bc: number;
  readonly nb: Netback;
  readonly nic: DomNic;
  readonly bridge: Bridge;
  private stopped = false;
  private lastFdbSweep = 0;
  /** The last step did nothing but find the NIC's transmit ring full. */
  private nicBlocked = false;
  onControl: () => void = () => {};

  constructor(cfg: DriverDomainConfig) {
    this.cfg = cfg;
    this.db = new Int32Array(cfg.evtchn);
    this.ctl = new Int32Array(cfg.control);
    this.summaryMask = summaryMaskFor(cfg.maxNetifs);
    this.c = new Float64Array(cfg.counters);
    this.ec = engineRowOffset(cfg.maxNetifs, 0);
    this.bc = bridgeRowOffset(cfg.maxNetifs);
    this.nb = new Netback(cfg.maxNetifs, this.c, this.ec);
    this.nic = new DomNic(cfg.nic);
    this.bridge = new Bridge(this.nb, this.nic, new Fdb(cfg.fdbCapacity, cfg.fdbAgeMs), this.c, this.ec, this.bc);
  }

  set onEvent(fn: (e: NetbackEvent) => void) {
    this.nb.onEvent = fn;
  }

  // ---- control (between iterations) --------------------------------------------------------

  addNetif(spec: VifSpec): void {
    this.nb.add(spec);
    this.bridge.fdb.addStatic(parseMac(spec.mac)!, portOf(spec.slot));
    this.bridge.rebuildPorts();
  }

  removeNetif(slot: number, now: number): { unsent: number; countedTo: number } {
    const r = this.nb.remove(slot);
    this.bridge.fdb.removePort(portOf(slot), now);
    this.bridge.rebuildPorts();
    return r;
  }

  stop(): void {
    this.stopped = true;
  }

  // ---- data path ---------------------------------------------------------------------------

  /** One iteration; returns frames and events handled (0 = idle). */
  step(now: number): number {
    let work = 0;
    if (Atomics.load(this.ctl, W.CONTROL) !== 0) {
      Atomics.store(this.ctl, W.CONTROL, 0);
      this.onControl();
      work++;
    }
    const db = this.db;
    if (Atomics.load(db, W.SUMMARY) !== 0) work += drainRung(db, this.summaryMask, this.nb.onRung);
    work += this.fromNic(now);
    const before = work;
    const act = this.nb.active;
    let nicFull = false;
    let blockedAt = -1;
    for (let i = 0; i < act.length; ) {
      const v = act[i]!;
      const n = this.fromGuest(v, now);
      work += n;
      if (n < 0) {
        // The NIC's transmit ring is full: leave the guest's frames queued (backpressure) and
        // keep the netif active; the device engine is draining the ring.
        work += -n - 1;
        if (!nicFull) blockedAt = n < -1 ? i + 1 : i; // first netif that got nothing
        nicFull = true;
        i++;
      } else if (n < this.cfg.batch && !(v.dev !== null && v.dev.fromGuestQ.enableKicks())) {
        v.active = false;
        act[i] = act[act.length - 1]!;
        act.pop();
      } else i++;
    }
    if (nicFull) {
      this.c[this.bc + BC.nic_tx_full_waits] += 1;
      // The first netif that found the NIC full without sending goes first next time.
      rotateLeft(act, blockedAt % act.length);
    }
    this.nicBlocked = nicFull && work === before && work === 0;
    this.nic.flush();
    this.nb.finish();
    this.c[this.ec + EC.loops] += 1;
    return work;
  }

  /** Up to `batch` frames from the NIC into the bridge. */
  private fromNic(now: number): number {
    const drv = this.nic.drv;
    const n = drv.receive(this.cfg.batch);
    if (n === 0) return 0;
    const b = this.nic.bytes;
    const b32 = this.nic.words;
    for (let i = 0; i < n; i++) this.bridge.fromNic(b, b32, drv.frameOffset(i), drv.frameLength(i), now);
    drv.release();
    return n;
  }

  /**
   * Up to `batch` frames from a netif: netback copies each into a NIC transmit buffer (the grant
   * copy), checks the source MAC on that copy, and hands it to the bridge. Returns frames taken,
   * or -(taken + 1) when it stopped because the NIC's transmit ring was full.
   */
  private fromGuest(v: EngineVif, now: number): number {
    const dev = v.dev;
    if (dev === null) return 0;
    const nic = this.nic;
    const c = this.c;
    const base = v.counterBase;
    const batch = this.cfg.batch;
    let done = 0;
    let full = false;
    while (done < batch) {
      const slot = nic.reserve();
      if (slot < 0) {
        full = true;
        break;
      }
      const len = dev.fromGuest(nic.view(slot), nic.view32Of(slot));
      if (len === TX_EMPTY) break;
      if (len === TX_VIOLATION) {
        this.nb.needsReset(v, dev.fromGuestQ.violation);
        break;
      }
      done++;
      if (len <= 0) continue; // dropped and counted by the device code; the buffer stays held
      if (len > nic.maxFrame) {
        c[base + VC.tx_oversize] += 1; // cannot happen while netif MTU <= NIC MTU; counted if it does
        continue;
      }
      const b = nic.bytes;
      const f = nic.frameOffset(slot);
      // Anti-spoofing on the private copy (ARCHITECTURE.md rule 6), as on the direct path.
      if (macHi(b, f + 6) !== v.macHi || macLo(b, f + 6) !== v.macLo) {
        c[base + VC.tx_spoofed_mac] += 1;
        continue;
      }
      if (macHi(b, f) === v.macHi && macLo(b, f) === v.macLo) {
        c[base + VC.tx_to_self] += 1;
        continue;
      }
      c[base + VC.tx_frames] += 1;
      c[base + VC.tx_bytes] += len;
      this.bridge.fromNetif(v, slot, len, now);
    }
    if (done !== 0) {
      this.nb.touched(v);
    }
    return full ? -(done + 1) : done;
  }

  // ---- polling and sleeping ----------------------------------------------------------------

  private hasWork(): boolean {
    return Atomics.load(this.db, W.SUMMARY) !== 0 || Atomics.load(this.ctl, W.CONTROL) !== 0 ||
      this.nb.active.length !== 0;
  }

  /** Sweep netifs (lost events) and age the FDB; called every `sweepMs`, busy or idle. */
  sweep(now: number): void {
    this.c[this.ec + EC.sweeps] += 1;
    this.nb.sweep();
    if (now - this.lastFdbSweep >= 1000) {
      this.lastFdbSweep = now;
      this.bridge.fdb.sweep(now);
    }
    this.bridge.publishFdbCounters();
  }

  /** The worker's main loop: poll while busy, spin `spinUs`, then sleep on the event channel. */
  run(): void {
    const c = this.c;
    const ec = this.ec;
    const db = this.db;
    const sweepMs = this.cfg.sweepMs;
    let last = performance.now();
    let lastSweep = last;
    let idleSince = -1;
    let busy = false;
    while (!this.stopped) {
      const now = performance.now();
      c[ec + (busy ? EC.busy_ns : EC.idle_ns)] += (now - last) * 1e6;
      last = now;
      if (now - lastSweep >= sweepMs) {
        lastSweep = now;
        this.sweep(now);
      }
      busy = this.step(now) !== 0;
      if (busy) {
        idleSince = -1;
        continue;
      }
      if (idleSince < 0) idleSince = now;
      // Spin only while waiting for input; waiting for NIC room is no reason to hold the CPU.
      if (!this.nicBlocked && (now - idleSince) * 1000 < this.cfg.spinUs) continue;
      // Sleep: announce it, arm the NIC's receive interrupt and the netifs' kicks, re-check.
      Atomics.store(db, W.SLEEPING, 1);
      const seen = Atomics.load(db, W.WAKE);
      // Guest frames waiting only for room in the NIC's transmit ring: nap briefly instead of
      // spinning, so the device engine draining it (often sharing this core) gets the CPU.
      const blockedOnly = this.nicBlocked && Atomics.load(db, W.SUMMARY) === 0 && Atomics.load(this.ctl, W.CONTROL) === 0;
      if (this.nic.armRx() || (!blockedOnly && this.hasWork())) {
        Atomics.store(db, W.SLEEPING, 0);
        continue;
      }
      c[ec + EC.sleeps] += 1;
      const r = Atomics.wait(db, W.WAKE, seen, blockedOnly ? UPLINK_NAP_MS : Math.max(lastSweep + sweepMs - now, 0));
      Atomics.store(db, W.SLEEPING, 0);
      if (r !== 'timed-out') c[ec + EC.wakeups] += 1;
      idleSince = -1;
    }
  }
}
