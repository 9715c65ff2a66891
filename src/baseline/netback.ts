/**
 * netback: the driver domain's half of each guest's netif. A netif is served exactly like a VIF on
 * the device, with the same code: an EngineVif (status, feature negotiation, reset handshake,
 * NEEDS_RESET) holding a VirtioNetDevice (split virtqueues, every guest-written value checked,
 * every bad frame counted by reason). Only the place differs: netback runs in the driver-domain
 * worker, and what it takes from a guest goes to the bridge instead of the device's switch.
 *
 * Event channels: a guest kicks by setting its netif's bit in the driver domain's event-channel
 * page (the unchanged VirtioNetDriver rings that page as it would an engine's doorbell page);
 * netback notifies a guest by adding to the netif's interrupt word (the `direct` mode of the
 * device), once per loop iteration and only when EVENT_IDX says the guest asked (2.7.10).
 */
import { H, i32 } from '../layout/vif.js';
import { EC, VC } from '../layout/counters.js';
import { EngineVif, VifState, type VifSpec } from '../device/engine-vif.js';
import { RX_VIOLATION } from '../device/virtio-net-device.js';

export type NetbackEvent =
  | { type: 'needs-reset'; slot: number; reason: string }
  | { type: 'recovered'; slot: number };

export class Netback {
  readonly netifs: (EngineVif | undefined)[];
  /** Netifs that have (or may have) guest transmit work. */
  readonly active: EngineVif[] = [];
  private readonly dirty: EngineVif[] = [];
  readonly c: Float64Array;
  private readonly ec: number;
  onEvent: (e: NetbackEvent) => void = () => {};

  constructor(maxNetifs: number, counters: Float64Array, ddRow: number) {
    this.netifs = new Array(maxNetifs).fill(undefined);
    this.c = counters;
    this.ec = ddRow;
  }

  add(spec: VifSpec): EngineVif {
    const v = new EngineVif(spec);
    this.netifs[spec.slot] = v;
    v.publishConfig();
    this.kicked(v); // the guest's driver may have started before the netif reached us
    return v;
  }

  /** Stop serving a netif; frames its guest queued and netback never took count as tx_unplugged. */
  remove(slot: number): { unsent: number; countedTo: number } {
    const v = this.netifs[slot];
    if (!v) return { unsent: 0, countedTo: -1 };
    const dev = v.dev;
    const unsent = dev ? dev.unsentFromGuest() : 0;
    if (dev) dev.fromGuestQ.publishUsed(), dev.toGuestQ.publishUsed();
    this.c[v.counterBase + VC.tx_unplugged] += unsent;
    this.netifs[slot] = undefined;
    const drop = (a: EngineVif[]) => {
      const i = a.indexOf(v);
      if (i >= 0) a.splice(i, 1);
    };
    drop(this.active);
    drop(this.dirty);
    return { unsent, countedTo: dev ? (dev.fromGuestQ.lastAvail + unsent) & 0xffff : -1 };
  }

  /** drainRung() visitor: a netif's event channel fired (1), or a spurious bit (0). */
  readonly onRung = (slot: number): number => {
    const v = this.netifs[slot];
    if (v === undefined) {
      this.c[this.ec + EC.spurious_doorbells] += 1;
      return 0;
    }
    this.c[v.counterBase + VC.kicks] += 1;
    this.kicked(v);
    return 1;
  };

  /** Follow the guest driver's status; put a live netif on the active list. */
  kicked(v: EngineVif): void {
    const recovered = v.follow(this.c, this.active);
    if (v.needsReport) this.report(v);
    else if (recovered) this.onEvent({ type: 'recovered', slot: v.slot });
  }

  /** Wake every netif that changed status or has transmit work (bounds a lost event). */
  sweep(): void {
    for (let s = 0; s < this.netifs.length; s++) {
      const v = this.netifs[s];
      if (v === undefined) continue;
      if (v.state !== VifState.LIVE || (v.dev !== null && v.dev.fromGuestQ.pending() !== 0)) this.kicked(v);
    }
  }

  /** A protocol violation on a netif's ring: NEEDS_RESET (virtio 1.2, 2.1.2); others carry on. */
  needsReset(v: EngineVif, violation: number): void {
    v.enterNeedsReset(`virtqueue violation ${violation}`);
    this.report(v);
  }

  private report(v: EngineVif): void {
    v.needsReport = false;
    this.notify(v); // configuration change: the driver reads status and sees NEEDS_RESET
    this.onEvent({ type: 'needs-reset', slot: v.slot, reason: v.violationReason });
  }

  /** Place a frame (in driver-domain memory) into a netif's receive queue: the receive grant copy. */
  deliver(v: EngineVif, buf: Uint8Array, buf32: Int32Array, off: number, len: number): void {
    const dev = v.dev;
    if (dev === null || v.state !== VifState.LIVE) {
      this.c[v.counterBase + VC.rx_not_ready] += 1;
      return;
    }
    const r = dev.toGuest(buf, buf32, off, len);
    if (r === RX_VIOLATION) {
      this.c[v.counterBase + VC.rx_not_ready] += 1; // lost with the broken queue, counted
      this.needsReset(v, dev.toGuestQ.violation);
      return;
    }
    this.touched(v);
  }

  /** The netif's rings changed this iteration: publish and decide its interrupt in finish(). */
  touched(v: EngineVif): void {
    if (!v.dirty) {
      v.dirty = true;
      this.dirty.push(v);
    }
  }

  /** Once per iteration: publish used rings and notify guests that asked (event channel). */
  finish(): void {
    const d = this.dirty;
    for (let i = 0; i < d.length; i++) {
      const v = d[i]!;
      v.dirty = false;
      const dev = v.dev;
      if (dev === null) continue;
      dev.fromGuestQ.publishUsed();
      dev.toGuestQ.publishUsed();
      const want = dev.toGuestQ.wantsInterrupt();
      if (dev.fromGuestQ.wantsInterrupt() || want) this.notify(v);
    }
    d.length = 0;
  }

  private notify(v: EngineVif): void {
    this.c[v.counterBase + VC.irq_raised] += 1;
    Atomics.add(v.header, i32(H.IRQ), 1);
    Atomics.notify(v.header, i32(H.IRQ), 1);
  }
}
