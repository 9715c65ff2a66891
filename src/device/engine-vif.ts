/**
 * One VIF as its engine holds it: the device's private copy of its identity (MAC, MTU, link,
 * filters, coalescing) plus the isolate transport that starts the virtio device when the guest's
 * driver sets DRIVER_OK (virtio 1.2, 3.1.1) and stops it on reset or NEEDS_RESET.
 */
import { H, i32, vifLayout, RINGS_OFFSET, QUEUE_GUEST_RX, QUEUE_GUEST_TX } from '../layout/vif.js';
import { SabGuestMemory } from '../virtio/guest-memory.js';
import {
  STATUS_DRIVER_OK, STATUS_FAILED, STATUS_FEATURES_OK, STATUS_NEEDS_RESET, F_EVENT_IDX, F_VERSION_1,
  NET_S_LINK_UP, hasFeature, type Features,
} from '../virtio/constants.js';
import { VirtioNetDevice } from './virtio-net-device.js';
import { VC, vifRowOffset } from '../layout/counters.js';
import { parseMac, macHi, macLo } from './mac-table.js';

export interface Coalesce {
  /** Raise at most one interrupt per this many frames (1 = no frame coalescing). */
  frames: number;
  /** ... or once this many microseconds passed since the first held-back interrupt. */
  usecs: number;
}

/** What the control plane tells an engine about a VIF. */
export interface VifSpec {
  slot: number;
  sab: SharedArrayBuffer;
  queueSize: number;
  mac: string;
  mtu: number;
  segment: number;
  linkUp: boolean;
  promiscuous: boolean;
  multicast: string[];
  coalesce: Coalesce;
  deviceFeatures: Features;
  /**
   * Anti-spoofing (default true). False only for a VIF the control plane trusts to send other
   * MACs: a driver domain's bridge port (SR-IOV `spoofchk off`, src/baseline/).
   */
  spoofCheck?: boolean;
  /**
   * A wake page (layout/doorbell.ts) to wake as well whenever this VIF's interrupt is raised: lets
   * a driver domain sleep on one word for its guests' kicks and its NIC's interrupts.
   */
  interruptWake?: SharedArrayBuffer;
}

export const enum VifState {
  WAITING = 0, // driver has not set DRIVER_OK yet
  LIVE = 1,
  NEEDS_RESET = 2,
}

export class EngineVif {
  readonly slot: number;
  readonly sab: SharedArrayBuffer;
  readonly queueSize: number;
  readonly header: Int32Array;
  readonly counterBase: number;
  private _state = VifState.WAITING;
  dev: VirtioNetDevice | null = null;
  mac: Uint8Array;
  macHi: number;
  macLo: number;
  mtu: number;
  segment: number;
  linkUp: boolean;
  promiscuous: boolean;
  /** Joined multicast groups as (hi, lo) pairs. */
  mcast: Int32Array;
  coalesce: Coalesce;
  readonly deviceFeatures: Features;
  readonly spoofCheck: boolean;
  /** Wake page also woken on this VIF's interrupts (VifSpec.interruptWake), or null. */
  readonly irqWake: Int32Array | null;
  /** In the engine's active list (has or may have guest TX work). */
  active = false;
  /** Touched this loop iteration: used rings need publishing and interrupts deciding. */
  dirty = false;
  /** Frames completed (either queue) in the current loop iteration. */
  batchFrames = 0;
  /** Coalescing: an interrupt is wanted but held back since `irqSince` (engine ms clock)... */
  irqHeld = false;
  irqSince = 0;
  /** ... covering this many completed frames so far. */
  heldFrames = 0;
  /** On the engine's list of held interrupts (may outlive irqHeld until the list is walked). */
  inHeld = false;
  violationReason = '';
  /** NEEDS_RESET entered and not yet reported to the control plane / the guest. */
  needsReport = false;
  // ---- VM VIFs (vhost-user, issue 5): status comes from the vhost-user session, not the header.
  /** Served for a VM: its device is built by Engine.vmStart, interrupts go to these call eventfds. */
  vmCallFds: [number, number] | null = null;
  /** Rings whose interrupt is wanted (bit 0 toGuest/ring 0, bit 1 fromGuest/ring 1). */
  irqQueues = 0;

  constructor(spec: VifSpec) {
    this.slot = spec.slot;
    this.sab = spec.sab;
    this.queueSize = spec.queueSize;
    this.header = new Int32Array(spec.sab, 0, 1024);
    this.counterBase = vifRowOffset(spec.slot);
    this.deviceFeatures = spec.deviceFeatures;
    this.spoofCheck = spec.spoofCheck ?? true;
    this.irqWake = spec.interruptWake ? new Int32Array(spec.interruptWake) : null;
    this.mac = new Uint8Array(6);
    this.macHi = 0;
    this.macLo = 0;
    this.mtu = spec.mtu;
    this.segment = spec.segment;
    this.linkUp = spec.linkUp;
    this.promiscuous = spec.promiscuous;
    this.mcast = new Int32Array(0);
    this.coalesce = spec.coalesce;
    this.setMac(spec.mac);
    this.setMulticast(spec.multicast);
  }

  setMac(mac: string): void {
    const b = parseMac(mac);
    if (!b) throw new RangeError(`bad MAC ${mac}`);
    this.mac.set(b);
    this.macHi = macHi(b, 0);
    this.macLo = macLo(b, 0);
  }

  setMulticast(groups: string[]): void {
    const m = new Int32Array(groups.length * 2);
    groups.forEach((g, i) => {
      const b = parseMac(g);
      if (!b) throw new RangeError(`bad multicast MAC ${g}`);
      m[2 * i] = macHi(b, 0);
      m[2 * i + 1] = macLo(b, 0);
    });
    this.mcast = m;
  }

  get state(): VifState {
    return this._state;
  }

  /**
   * Every state change is mirrored into the header's device-state word, so a resetting driver can
   * wait until the device has seen its reset (virtio 1.2, 4.1.4.3.2).
   */
  set state(s: VifState) {
    this._state = s;
    Atomics.store(this.header, i32(H.DEVICE_STATE), s);
    Atomics.notify(this.header, i32(H.DEVICE_STATE));
  }

  /** Does this VIF's receive filter accept a frame with destination MAC at b[off]? */
  accepts(b: Uint8Array, off: number): boolean {
    if (this.promiscuous) return true;
    const hi = macHi(b, off);
    const lo = macLo(b, off);
    if (hi === this.macHi && lo === this.macLo) return true;
    if (hi === 0xffff && lo === -1) return true; // broadcast
    const m = this.mcast;
    for (let i = 0; i < m.length; i += 2) if (m[i] === hi && m[i + 1] === lo) return true;
    return false;
  }

  /** Mirror the device's config into the guest-visible header (virtio 1.2, 5.1.4) and bump generation. */
  publishConfig(): void {
    const h = this.header;
    const u8 = new Uint8Array(this.sab, H.MAC, 6);
    u8.set(this.mac);
    Atomics.store(h, i32(H.MTU), this.mtu);
    Atomics.store(h, i32(H.LINK_STATUS), this.linkUp ? NET_S_LINK_UP : 0);
    Atomics.add(h, i32(H.CONFIG_GENERATION), 1);
  }

  /**
   * A doorbell or a sweep reached this VIF: follow the driver's status (syncStatus) and join
   * `active` if live. Returns true if the VIF just left NEEDS_RESET, for the owner (an engine or a
   * netback) to report 'recovered'; a VIF that just broke has needsReport set instead.
   */
  follow(counters: Float64Array, active: EngineVif[]): boolean {
    const wasBroken = this.state === VifState.NEEDS_RESET;
    if (this.syncStatus(counters) && !this.active) {
      this.active = true;
      active.push(this);
    }
    return wasBroken && this.state !== VifState.NEEDS_RESET;
  }

  /**
   * Called when the guest kicked or a sweep found the VIF not live: follow the driver's status.
   * Returns true if the VIF just became (or stays) live. Counts proto_bad_features when the driver
   * accepted features the device did not offer or left out VERSION_1 (virtio 1.2, 6.1).
   */
  syncStatus(counters: Float64Array): boolean {
    if (this.vmCallFds !== null) return this.dev !== null && this.state === VifState.LIVE;
    const status = Atomics.load(this.header, i32(H.STATUS));
    if (status === 0) {
      // Driver reset (virtio 1.2, 2.4): forget queues; a NEEDS_RESET VIF becomes usable again.
      if (this.state !== VifState.WAITING) {
        this.dev = null;
        this.state = VifState.WAITING;
        counters[this.counterBase + VC.resets] += 1;
      }
      return false;
    }
    if (this.state === VifState.LIVE) return (status & STATUS_FAILED) === 0 || this.stop();
    if (this.state === VifState.NEEDS_RESET) {
      // Only a driver write clears the DEVICE_NEEDS_RESET bit the device ORed in (virtio 1.2, 2.1.2).
      // A driver resets by writing 0 (2.4) and may re-initialise (3.1.1) before the engine looks, so
      // the 0 itself can go unseen: a status without NEEDS_RESET means the driver reset the device.
      if ((status & STATUS_NEEDS_RESET) !== 0) return false;
      this.dev = null;
      this.state = VifState.WAITING;
      counters[this.counterBase + VC.resets] += 1;
    }
    const ready = STATUS_DRIVER_OK | STATUS_FEATURES_OK;
    if ((status & ready) !== ready || (status & (STATUS_FAILED | STATUS_NEEDS_RESET)) !== 0) return false;
    const drv: Features = {
      lo: Atomics.load(this.header, i32(H.DRIVER_FEATURES_LO)) >>> 0,
      hi: Atomics.load(this.header, i32(H.DRIVER_FEATURES_HI)) >>> 0,
    };
    const dev = this.deviceFeatures;
    if ((drv.lo & ~dev.lo) !== 0 || (drv.hi & ~dev.hi) !== 0 || !hasFeature(drv, F_VERSION_1)) {
      counters[this.counterBase + VC.proto_bad_features] += 1;
      this.enterNeedsReset('proto_bad_features');
      return false;
    }
    // Ring placement comes from the device's own record of the layout, never from the header.
    const layout = vifLayout(this.queueSize, this.mtu);
    const mem = new SabGuestMemory(this.sab, RINGS_OFFSET);
    this.dev = new VirtioNetDevice(mem, layout.queues[QUEUE_GUEST_RX], layout.queues[QUEUE_GUEST_TX],
      hasFeature(drv, F_EVENT_IDX), { mtu: this.mtu, linkUp: this.linkUp }, counters, this.counterBase);
    this.state = VifState.LIVE;
    this.batchFrames = 0;
    this.heldFrames = 0;
    this.irqHeld = false;
    return true;
  }

  private stop(): false {
    this.dev = null;
    this.state = VifState.WAITING;
    return false;
  }

  /** Enter NEEDS_RESET (virtio 1.2, 2.1.2): stop using the queues and tell the driver. */
  enterNeedsReset(reason: string): void {
    this.state = VifState.NEEDS_RESET;
    this.violationReason = reason;
    this.needsReport = true;
    this.dev = null;
    Atomics.or(this.header, i32(H.STATUS), STATUS_NEEDS_RESET);
    Atomics.add(this.header, i32(H.CONFIG_GENERATION), 1);
  }
}
