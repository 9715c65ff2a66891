/**
 * QoS inside one engine: which VIF's guest-TX ring the engine reads next and how much it takes,
 * and when frames for a VIF with a guest-RX limit are placed. Parameters come from the device's
 * QoS table (layout/qos.ts) without messages; the engine calls in here only when some VIF on it
 * has QoS settings or the port has a capacity (otherwise its plain round robin runs untouched).
 *
 * Guest TX, per engine iteration:
 *  1. VIFs that rang (the engine's active list) join the priority list (priority > 0) or the
 *     DRR rotation (drr.ts); VIFs held by their own limit wait on a timer list instead.
 *  2. Priority VIFs are served first and again before every DRR visit (priority.ts bounds them).
 *  3. VIFs with a guarantee and tokens left in it are served toward it.
 *  4. One DRR pass over the rest; this engine's share of the uplink port is the pass's shared gate
 *     (engines split the capacity by the demand they publish: reshare()).
 * Over its limit a VIF is *held*: the engine stops taking its descriptors, so the guest's ring
 * fills and its driver sees a full ring (backpressure). Nothing is dropped on guest TX.
 *
 * Guest RX (guest-rx-limit.ts): a frame for a VIF over its RX limit waits in the VIF's bounded
 * hold queue and is placed once the bucket allows. A sender on this engine is then held like a
 * VIF over its TX limit; frames from the uplink or other engines only queue (holding a ring would
 * block every VIF behind it), and one that finds the queue full is dropped (rx_qos_overflow).
 */
import { EC, VC } from '../../layout/counters.js';
import { QOS_HEADER, readQosPort, readQosRow, emptyQosRow, checkQosTable, type QosPort, type QosRow } from '../../layout/qos.js';
import type { Engine } from '../engine.js';
import type { EngineVif } from '../engine-vif.js';
import { TokenBucket } from './token-bucket.js';
import { Drr, MORE, EMPTY, HELD, GATED, type DrrServer } from './drr.js';
import { PriorityBound } from './priority.js';
import { GuestRxLimit } from './guest-rx-limit.js';
import { UplinkPort } from './port-share.js';

/** Most frames one visit takes (the DRR quantum bounds bytes; this bounds tiny frames). */
const VISIT_FRAMES = 1024;

export class EngineQos implements DrrServer {
  /** Serve through QoS (some VIF has QoS, or the port has a capacity)? */
  on = false;
  outcome = MORE;
  private readonly eng: Engine;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly c: Float64Array;
  private gen = -1;
  private readonly rowSeq: Int32Array;
  private readonly rows: QosRow[];
  private readonly portCfg: QosPort = { capacityBps: 0, priorityShare: 0.5, quantum: 6072 };
  private readonly scratch = emptyQosRow();
  readonly drr: Drr;
  readonly prioBound: PriorityBound;
  /** This engine's share of the uplink port (port-share.ts). */
  readonly port: UplinkPort;
  readonly tx: TokenBucket[];
  /** Guest-RX limits and their hold queues. */
  readonly rxLimit: GuestRxLimit;
  readonly min: TokenBucket[];
  /** 1 = the VIF's last frame went to the uplink: it waits for the port. */
  private readonly toUplink: Uint8Array;
  /** Read by Engine.deliver for every frame: 1 = this VIF has a guest-RX limit. */
  readonly rxLimited: Uint8Array;
  private readonly prio: Int32Array; // priority flows, highest class first
  private prioN = 0;
  private readonly inPrio: Uint8Array;
  private readonly held: Int32Array;
  private heldN = 0;
  private readonly inHeld: Uint8Array;
  private readonly readyAt: Float64Array;
  /** 1 = the VIF's ring ran dry since it was last served (its bucket saves up only its burst). */
  private readonly wasIdle: Uint8Array;
  private readonly guaranteed: Int32Array;
  private guaranteedN = 0;
  private now = 0;
  /** Frames handled in the current iteration. */
  private frames = 0;

  constructor(eng: Engine, table: SharedArrayBuffer) {
    checkQosTable(table, eng.cfg.maxVifs, eng.cfg.engines);
    this.eng = eng;
    this.i32 = new Int32Array(table);
    this.f64 = new Float64Array(table);
    this.c = eng.c;
    const n = eng.cfg.maxVifs;
    this.rowSeq = new Int32Array(n).fill(-1);
    this.rows = Array.from({ length: n }, emptyQosRow);
    this.drr = new Drr(n, this.portCfg.quantum);
    this.prioBound = new PriorityBound(eng.cfg.batch);
    this.tx = Array.from({ length: n }, () => new TokenBucket());
    this.rxLimit = new GuestRxLimit(eng);
    this.rxLimited = this.rxLimit.limited;
    this.min = Array.from({ length: n }, () => new TokenBucket());
    this.toUplink = new Uint8Array(n);
    this.prio = new Int32Array(n);
    this.inPrio = new Uint8Array(n);
    this.held = new Int32Array(n);
    this.inHeld = new Uint8Array(n);
    this.readyAt = new Float64Array(n);
    this.wasIdle = new Uint8Array(n).fill(1);
    this.guaranteed = new Int32Array(n);
    this.port = new UplinkPort(table, n, eng.cfg.index, eng.cfg.engines);
  }

  // ---- parameters (read from the table when its GEN moves) ---------------------------------

  /** Once per iteration: pick up parameter changes. Returns `on`. */
  check(now: number): boolean {
    this.now = now;
    const g = Atomics.load(this.i32, QOS_HEADER.GEN);
    if (g !== this.gen) this.reload(g, now);
    return this.on;
  }

  /** A VIF was added to the engine: re-read its row even if GEN did not move. */
  attach(slot: number): void {
    this.rowSeq[slot] = -1;
    this.gen = -1;
  }

  private reload(g: number, now: number): void {
    if (readQosPort(this.i32, this.f64, this.portCfg) < 0) return; // writer busy: next iteration
    this.port.configure(this.portCfg.capacityBps, now);
    this.prioBound.setShare(this.port.rate, this.portCfg.priorityShare, now);
    this.drr.quantum = this.portCfg.quantum;
    let complete = true;
    const vifs = this.eng.vifs;
    for (let s = 0; s < vifs.length; s++) {
      if (vifs[s] === undefined) continue;
      const seq = readQosRow(this.i32, this.f64, s, this.scratch);
      if (seq < 0) {
        complete = false;
        continue;
      }
      if (seq === this.rowSeq[s]) continue;
      this.rowSeq[s] = seq;
      this.apply(s, now);
    }
    let enabled = 0;
    this.guaranteedN = 0;
    for (let s = 0; s < vifs.length; s++) {
      if (vifs[s] === undefined) continue;
      const r = this.rows[s]!;
      if (r.enabled) enabled++;
      if (r.enabled && r.minBps > 0) this.guaranteed[this.guaranteedN++] = s;
    }
    const on = enabled !== 0 || this.port.on;
    if (this.on && !on) this.handBack();
    this.on = on;
    if (complete) this.gen = g;
  }

  private apply(s: number, now: number): void {
    const r = this.rows[s]!;
    const n = this.scratch;
    const prioChanged = r.priority !== n.priority;
    Object.assign(r, n);
    if (!r.enabled) Object.assign(r, emptyQosRow());
    this.tx[s]!.set(r.txBps, r.txBurstBytes, r.txPps, r.txBurstFrames, now);
    this.rxLimit.configure(s, r.rxBps, r.rxBurstBytes, r.rxPps, r.rxBurstFrames, now);
    this.min[s]!.set(r.minBps, 0, 0, 0, now);
    this.drr.weight[s] = r.weight > 0 ? r.weight : 1;
    // A VIF changing class leaves its lists; it rejoins through the active list.
    if (prioChanged && (this.inPrio[s] === 1 || this.drr.has(s) || this.inHeld[s] === 1)) {
      this.unlist(s);
      this.release(this.eng.vifs[s]!);
    }
  }

  /** QoS switched off: every VIF it holds goes back to the engine's plain round robin. */
  private handBack(): void {
    for (let s = 0; s < this.eng.vifs.length; s++) {
      const v = this.eng.vifs[s];
      if (v === undefined) continue;
      if (this.inPrio[s] === 1 || this.drr.has(s) || this.inHeld[s] === 1) {
        this.unlist(s);
        this.release(v);
      }
    }
    this.rxLimit.releaseAll();
  }

  /** Back onto the engine's active list (it is still marked active). */
  private release(v: EngineVif): void {
    v.active = true;
    this.eng.active.push(v);
  }

  /** The VIF left the engine: drop it from every list; queued RX frames count as rx_qos_flushed. */
  forget(slot: number): void {
    this.unlist(slot);
    this.rxLimit.forget(slot);
    this.rowSeq[slot] = -1;
    Object.assign(this.rows[slot]!, emptyQosRow());
    this.toUplink[slot] = 0;
    this.wasIdle[slot] = 1;
    this.gen = -1;
  }

  private unlistPrio(s: number): void {
    this.inPrio[s] = 0;
    for (let i = 0; i < this.prioN; i++) {
      if (this.prio[i] === s) {
        this.prio.copyWithin(i, i + 1, this.prioN);
        this.prioN--;
        return;
      }
    }
  }

  private unlist(s: number): void {
    this.drr.remove(s);
    if (this.inPrio[s] === 1) this.unlistPrio(s);
    if (this.inHeld[s] === 1) {
      this.inHeld[s] = 0;
      for (let i = 0; i < this.heldN; i++) if (this.held[i] === s) this.held[i] = this.held[--this.heldN]!;
    }
  }

  // ---- guest TX ------------------------------------------------------------------------------

  /** One iteration's guest-TX service. Returns frames handled. */
  serviceFromGuest(now: number): number {
    this.now = now;
    const eng = this.eng;
    const act = eng.active;
    for (let i = 0; i < act.length; i++) this.enlist(act[i]!.slot);
    act.length = 0;
    for (let i = 0; i < this.heldN; ) {
      const s = this.held[i]!;
      if (this.readyAt[s]! <= now) {
        this.inHeld[s] = 0;
        this.held[i] = this.held[--this.heldN]!;
        this.enlist(s);
      } else i++;
    }
    if (this.port.on) {
      if (this.port.due(now)) this.reshare(now);
      this.port.bucket.refill(now, this.drr.count !== 0 || this.prioN !== 0);
    }
    this.prioBound.beginRound(now);
    this.frames = 0;
    if (this.prioN !== 0) this.pollPriority();
    if (this.guaranteedN !== 0) this.serveGuarantees();
    this.drr.pass(this);
    if (this.rxLimit.queued) {
      this.rxLimit.now = now;
      this.frames += this.rxLimit.drainPending();
    }
    return this.frames;
  }

  /**
   * Several engines, one uplink: publish this engine's demand (the weights and guarantees, or
   * rate limits, of its VIFs waiting for the uplink: addDemand) and shape its port bucket to its guarantees plus its weighted
   * share of the rest of the capacity (layout/qos.ts). Engines without demand keep a trickle (0.1 %
   * of the capacity) so a VIF that starts sending is not stuck until the next recompute.
   */
  private reshare(now: number): void {
    this.demandW = 0;
    this.demandG = 0;
    for (let i = 0; i < this.drr.count; i++) this.addDemand(this.drr.flowAt(i));
    for (let i = 0; i < this.prioN; i++) this.addDemand(this.prio[i]!);
    for (let i = 0; i < this.heldN; i++) this.addDemand(this.held[i]!);
    this.port.reshare(now, this.demandW, this.demandG);
  }

  private demandW = 0;
  private demandG = 0;

  /**
   * A backlogged VIF's claim on the uplink: a VIF with a guest-TX bit rate limit claims that rate
   * (it cannot use more), any other its weight in the split of what guarantees leave, plus its
   * guarantee.
   */
  private addDemand(s: number): void {
    if (this.toUplink[s] !== 1) return;
    const r = this.rows[s]!;
    if (r.txBps > 0) this.demandG += r.txBps;
    else {
      this.demandW += this.drr.weight[s]!;
      this.demandG += r.minBps;
    }
  }

  private enlist(s: number): void {
    if (this.rows[s]!.priority > 0) {
      if (this.inPrio[s] === 1) return;
      this.inPrio[s] = 1;
      // insertion keeps the list highest class first (FIFO within a class)
      const p = this.rows[s]!.priority;
      let i = this.prioN;
      while (i > 0 && this.rows[this.prio[i - 1]!]!.priority < p) {
        this.prio[i] = this.prio[i - 1]!;
        i--;
      }
      this.prio[i] = s;
      this.prioN++;
    } else {
      this.drr.add(s);
    }
  }

  private hold(s: number, wait: number): void {
    const v = this.eng.vifs[s]!;
    this.c[v.counterBase + VC.qos_tx_holds] += 1;
    if (this.inHeld[s] === 0) {
      this.inHeld[s] = 1;
      this.held[this.heldN++] = s;
      this.readyAt[s] = this.now + wait;
    } else if (this.now + wait > this.readyAt[s]!) this.readyAt[s] = this.now + wait; // never listed twice

  }

  /** Is the port closed for this VIF? (DrrServer) */
  gated(s: number): boolean {
    // The port's share is used up, or the uplink ring has no room (the engine's uplink backpressure).
    return this.toUplink[s] === 1 && (this.port.closed() || this.eng.uplinkWait(this.now));
  }

  beforeVisit(): void {
    if (this.prioN !== 0) this.pollPriority();
  }

  private pollPriority(): void {
    const b = this.prioBound;
    for (let i = 0; i < this.prioN; ) {
      const maxFrames = b.frames();
      if (maxFrames === 0) return;
      const s = this.prio[i]!;
      if (this.gated(s)) {
        i++;
        continue;
      }
      const n0 = this.frames;
      const took = this.take(s, Infinity, maxFrames, b.bytes());
      b.charge(this.frames - n0, took);
      if (this.outcome === EMPTY || this.outcome === HELD) continue; // removed from the list
      i++;
    }
  }

  private serveGuarantees(): void {
    for (let i = 0; i < this.guaranteedN; i++) {
      const s = this.guaranteed[i]!;
      if (!this.drr.has(s) || this.gated(s)) continue;
      const m = this.min[s]!;
      m.refill(this.now, true);
      if (!m.conforms()) continue;
      this.take(s, m.byteBudget(), VISIT_FRAMES, Infinity);
      if (this.outcome === EMPTY || this.outcome === HELD) this.drr.remove(s);
    }
  }

  /** Serve a DRR visit (DrrServer). */
  serve(s: number, budgetBytes: number): number {
    return this.take(s, budgetBytes, VISIT_FRAMES, Infinity);
  }

  /**
   * Take frames from VIF `s` within every bound that applies (budget, its own bucket, the port),
   * charge them, and set `outcome`. Removes the VIF from the priority list when it is EMPTY or
   * HELD (the DRR removes its own).
   */
  private take(s: number, budgetBytes: number, maxFramesIn: number, extraBytes: number): number {
    const v = this.eng.vifs[s];
    if (v === undefined || v.dev === null) {
      if (v !== undefined) v.active = false;
      this.wasIdle[s] = 1;
      return this.finish(s, EMPTY, 0);
    }
    const tb = this.tx[s]!;
    let maxBytes = budgetBytes < extraBytes ? budgetBytes : extraBytes;
    let maxFrames = maxFramesIn;
    // A VIF that ran dry earlier saves up only its burst; one that stayed backlogged may catch up
    // a stall of the engine (token-bucket.ts).
    const backlogged = this.wasIdle[s] === 0;
    this.wasIdle[s] = 0;
    if (tb.limited) {
      tb.refill(this.now, backlogged);
      if (!tb.conforms()) {
        this.hold(s, tb.waitMs());
        return this.finish(s, HELD, 0);
      }
      const bb = tb.byteBudget();
      if (bb < maxBytes) maxBytes = bb;
      const fb = tb.frameBudget();
      if (fb < maxFrames) maxFrames = fb;
    }
    const port = this.port;
    if (this.toUplink[s] === 1) {
      if (port.on) {
        const pb = port.bucket.byteBudget();
        if (pb < maxBytes) maxBytes = pb;
      }
      const room = this.eng.sw.uplinkRoom(); // never more than the uplink ring can take
      if (room < maxFrames) maxFrames = room > 0 ? room : 1;
    }
    const c = this.c;
    const ec = this.eng.ec;
    const upB = c[ec + EC.uplink_tx_bytes]!;
    const upF = c[ec + EC.uplink_tx_frames]!;
    const rx = this.rxLimit;
    rx.sender = s;
    rx.blockedMs = 0;
    rx.now = this.now;
    const n = this.eng.serviceFromGuest(v, maxFrames, maxBytes);
    rx.sender = -1;
    const bytes = this.eng.takenBytes;
    this.frames += n;
    tb.charge(bytes, n);
    const m = this.min[s]!;
    if (m.limited) {
      m.refill(this.now, backlogged);
      m.charge(bytes, n);
    }
    if (port.on) {
      const sentF = c[ec + EC.uplink_tx_frames]! - upF;
      port.bucket.charge(c[ec + EC.uplink_tx_bytes]! - upB, sentF);
      if (n !== 0) this.toUplink[s] = sentF !== 0 ? 1 : 0;
    }
    if (n < maxFrames && bytes < maxBytes) {
      // The ring ran dry (or broke): re-arm notifications and leave unless more arrived.
      if (v.dev !== null && v.dev.fromGuestQ.enableKicks()) return this.finish(s, MORE, bytes);
      v.active = false;
      this.wasIdle[s] = 1;
      return this.finish(s, EMPTY, bytes);
    }
    if (rx.blockedMs > 0) {
      // It sent into a guest-RX queue: hold it until that queue is paid for (guest-rx-limit.ts).
      this.hold(s, rx.blockedMs);
      return this.finish(s, HELD, bytes);
    }
    if (tb.limited && !tb.conforms()) {
      this.hold(s, tb.waitMs());
      return this.finish(s, HELD, bytes);
    }
    if (this.toUplink[s] === 1 && port.closed()) return this.finish(s, GATED, bytes);
    return this.finish(s, MORE, bytes);
  }

  /** Set the outcome; an EMPTY or HELD priority VIF leaves the priority list (DRR VIFs are removed by their caller). */
  private finish(s: number, outcome: number, bytes: number): number {
    this.outcome = outcome;
    if ((outcome === EMPTY || outcome === HELD) && this.inPrio[s] === 1) this.unlistPrio(s);
    return bytes;
  }

  // ---- guest RX ------------------------------------------------------------------------------

  /** A frame for VIF `v`, which has a guest-RX limit: true = place it now (guest-rx-limit.ts). */
  admitToGuest(v: EngineVif, buf: Uint8Array, buf32: Int32Array, off: number, len: number): boolean {
    this.rxLimit.now = this.now;
    return this.rxLimit.admit(v, buf, buf32, off, len);
  }

  // ---- sleeping ------------------------------------------------------------------------------

  /** Work that step() would do right now (used before the engine sleeps). */
  hasWork(): boolean {
    if (!this.on) return false;
    if (this.prioN !== 0) return true;
    if (this.drr.count !== 0 && !this.port.closed()) return true;
    return this.rxLimit.queued && this.rxLimit.ready(performance.now());
  }

  /** Milliseconds until a held VIF, the port or a queued RX frame may move (Infinity: none). */
  nextDeadline(now: number): number {
    if (!this.on) return Infinity;
    let t = Infinity;
    for (let i = 0; i < this.heldN; i++) {
      const d = this.readyAt[this.held[i]!]! - now;
      if (d < t) t = d;
    }
    if (this.drr.count !== 0 && this.port.on) {
      const d = this.port.bucket.last + this.port.bucket.waitMs() - now;
      if (d < t) t = d;
    }
    const r = this.rxLimit.nextDeadline(now);
    if (r < t) t = r;
    return t < 0 ? 0 : t;
  }
}
