/**
 * netfront, as the control plane sees it: a guest's netif on the driver-domain path. The guest's
 * side of a netif is the unchanged VirtioNetDriver (the `guest` library), given memory of exactly
 * a VIF's layout (layout/vif.ts) and the driver domain's event-channel page as its doorbell, so a
 * guest program cannot tell which path it is on. This file holds the control plane's handle on
 * one netif (the counterpart of hypervisor/vif.ts's Vif) and allocates its memory.
 */
import { vifLayout, QUEUE_GUEST_TX } from '../layout/vif.js';
import { readVifCounters, type VifCounter } from '../layout/counters.js';
import type { VifGrant } from '../guest/driver.js';
import type { DriverDomain } from './driver-domain.js';

export type NetifState = 'ready' | 'needs-reset' | 'destroyed';

export class Netif {
  state: NetifState = 'ready';
  guestId: string | null = null;
  needsResetReason = '';
  /** Counters at destruction (the slot's live row is reused by later netifs). */
  finalCounters: Record<VifCounter, number> | null = null;
  /** Guest transmit-ring position up to which frames were accounted at removal (-1: unknown). */
  countedTo = -1;

  constructor(
    readonly dd: DriverDomain,
    readonly id: string,
    readonly slot: number,
    readonly sab: SharedArrayBuffer,
    readonly mac: string,
    readonly mtu: number,
    readonly queueSize: number,
  ) {}

  /** The netif's counters (same names as a VIF's: tx_frames, rx_frames, drops by reason...). */
  counters(): Record<VifCounter, number> {
    return this.finalCounters ? { ...this.finalCounters } : readVifCounters(this.dd.f64, this.slot);
  }

  /** Memory granted to the guest: the netif buffer and the driver domain's event-channel page. */
  grant(): VifGrant {
    return { vifId: this.id, vif: this.sab, doorbell: this.dd.evtchn };
  }

  /** As Vif.countLateFrames(): frames the guest queued after removal count as tx_unplugged. */
  countLateFrames(): void {
    if (!this.finalCounters || this.countedTo < 0) return;
    const q = vifLayout(this.queueSize, this.mtu).queues[QUEUE_GUEST_TX];
    const availIdx = Atomics.load(new Uint16Array(this.sab, q.avail, 2), 1);
    const late = (availIdx - this.countedTo) & 0xffff;
    if (late <= this.queueSize) this.finalCounters.tx_unplugged += late;
    this.countedTo = availIdx;
  }
}
