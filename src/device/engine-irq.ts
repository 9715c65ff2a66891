/**
 * The interrupt side of a device engine: which VIFs were touched this iteration (the dirty list),
 * publishing their used rings once per batch, interrupt coalescing (the held list) and interrupt
 * delivery (direct, hypervisor-routed, or a VM's call eventfds). `Engine` (engine.ts) extends this
 * class, so the data path's `this.markDirty(v)` is an ordinary method call on the engine itself:
 * no extra object between the frame loop and the lists.
 */
import { ring as ringDoorbell, wake } from '../layout/doorbell.js';
import { VC } from '../layout/counters.js';
import { H, i32 } from '../layout/vif.js';
import type { EngineVif } from './engine-vif.js';
import { vmSignal } from '../vhost-user/engine-vm.js';

export class EngineIrq {
  readonly c: Float64Array;
  /** VIFs touched this iteration: their used rings are published and interrupts decided in flush(). */
  protected dirty: EngineVif[] = [];
  /** VIFs with an interrupt held back by coalescing (each at most once: EngineVif.inHeld). */
  protected held: EngineVif[] = [];
  private readonly irqPage: Int32Array | null;

  constructor(counters: SharedArrayBuffer, irqPage: SharedArrayBuffer | undefined) {
    this.c = new Float64Array(counters);
    this.irqPage = irqPage ? new Int32Array(irqPage) : null;
  }

  protected markDirty(v: EngineVif): void {
    if (!v.dirty) {
      v.dirty = true;
      this.dirty.push(v);
    }
  }

  /**
   * Publish used rings of every VIF touched this iteration and decide their interrupts. The
   * engine publishes its inter-engine rings right after (Engine.step).
   */
  protected flush(now: number): void {
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
  }

  /** Raise held interrupts whose frame count or time is up (coalescing, ARCHITECTURE.md). */
  protected releaseHeld(now: number): void {
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

  protected raiseIrq(v: EngineVif): void {
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

  /** Milliseconds until the earliest held interrupt is due (Infinity if none). For the run loop. */
  nextIrqDeadline(now: number): number {
    let t = Infinity;
    for (const v of this.held) if (v.irqHeld) t = Math.min(t, v.irqSince + v.coalesce.usecs / 1000 - now);
    return Math.max(t, 0.01);
  }
}
