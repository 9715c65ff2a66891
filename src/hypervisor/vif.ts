/**
 * A VIF as the control plane sees it, and the allocation and validation of VIF memory and
 * settings. The byte layout itself lives in layout/vif.ts.
 */
import { H, i32, vifLayout, VIF_MAGIC, VIF_LAYOUT_VERSION, QUEUE_COUNT, QUEUE_GUEST_TX } from '../layout/vif.js';
import type { VifCounter } from '../layout/counters.js';
import { F_EVENT_IDX, F_MAC, F_MTU, F_STATUS, F_VERSION_1, features } from '../virtio/constants.js';
import { parseMac } from '../device/mac-table.js';
import type { VifChange } from '../device/engine.js';
import { SvnicError } from './errors.js';
import type { Device } from './device.js';
import type { VifQos } from './qos.js';

export type VifSettings = Omit<VifChange, 'slot'> & {
  /** QoS (docs/qos.md): applied through the device's QoS table, not the engine's command port. */
  qos?: VifQos;
};

export const DEVICE_FEATURES = features(F_VERSION_1, F_MAC, F_MTU, F_STATUS, F_EVENT_IDX);
export const MAX_MTU = 9000;
export const MIN_MTU = 68;

export type VifState = 'ready' | 'needs-reset' | 'destroyed';

export class Vif {
  state: VifState = 'ready';
  guestId: string | null = null;
  needsResetReason = '';
  constructor(
    readonly device: Device,
    readonly id: string,
    readonly slot: number,
    readonly engine: number,
    readonly sab: SharedArrayBuffer,
    public mac: string,
    public mtu: number,
    readonly segment: number,
    readonly queueSize: number,
    public settings: Required<VifSettings>,
  ) {
    this.bufferMtu = mtu;
  }
  /** The MTU the VIF's buffers were sized for at creation: the ceiling for later MTU changes. */
  readonly bufferMtu: number;

  /** Counters at destruction (the slot's live row is reused by later VIFs). */
  finalCounters: Record<VifCounter, number> | null = null;
  /** Guest transmit-ring position up to which frames were accounted at removal (-1: unknown). */
  countedTo = -1;

  counters(): Record<VifCounter, number> {
    return this.finalCounters ? { ...this.finalCounters } : this.device.vifCounters(this.slot);
  }

  /**
   * After removal, the guest may still have queued frames before it learnt of the unplug. Once the
   * guest has acknowledged the unplug (or exited), count those as tx_unplugged too, so that
   * frames the guest sent = tx_frames + counted drops holds for unplugged VIFs as well.
   */
  countLateFrames(): void {
    if (!this.finalCounters || this.countedTo < 0) return;
    const q = vifLayout(this.queueSize, this.bufferMtu).queues[QUEUE_GUEST_TX];
    const availIdx = Atomics.load(new Uint16Array(this.sab, q.avail, 2), 1);
    const late = (availIdx - this.countedTo) & 0xffff;
    if (late <= this.queueSize) this.finalCounters.tx_unplugged += late;
    this.countedTo = availIdx;
  }

  /** The memory a guest is granted for this VIF: its buffer and its engine's doorbell page. */
  grant(): { vifId: string; vif: SharedArrayBuffer; doorbell: SharedArrayBuffer } {
    return { vifId: this.id, vif: this.sab, doorbell: this.device.engineDoorbell(this.engine) };
  }
}

export function checkMtu(mtu: number): void {
  if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) throw new SvnicError('BAD_MTU', `mtu must be an integer in ${MIN_MTU}..${MAX_MTU}, got ${mtu}`);
}

export function checkUnicastMac(mac: string): void {
  const b = parseMac(mac);
  if (!b) throw new SvnicError('BAD_MAC', `"${mac}" is not a MAC address; write it as 02:00:00:00:00:01`);
  if (b[0]! & 1) throw new SvnicError('BAD_MAC', `${mac} is a multicast address; a VIF needs a unicast MAC (first byte even)`);
  if (b.every((x) => x === 0)) throw new SvnicError('BAD_MAC', 'the all-zero MAC is not a valid VIF address');
}

export function checkSettings(s: Required<VifSettings>): void {
  for (const m of s.multicast) {
    const b = parseMac(m);
    if (!b || (b[0]! & 1) === 0) throw new SvnicError('BAD_MAC', `multicast group "${m}" must be a multicast MAC (first byte odd), e.g. 01:00:5e:00:00:01`);
  }
  const c = s.coalesce;
  if (!Number.isInteger(c.frames) || c.frames < 1 || c.frames > 65536 || !Number.isFinite(c.usecs) || c.usecs < 0 || c.usecs > 1e6) {
    throw new SvnicError('BAD_COALESCE', `coalesce needs frames in 1..65536 and usecs in 0..1000000, got ${JSON.stringify(c)}`);
  }
}

/** Allocate and initialise one VIF's memory (layout: layout/vif.ts). */
export function createVifMemory(slot: number, queueSize: number, mtu: number, mac: string): SharedArrayBuffer {
  const L = vifLayout(queueSize, mtu);
  const sab = new SharedArrayBuffer(L.byteLength);
  const h = new Int32Array(sab, 0, 1024);
  h[i32(H.MAGIC)] = VIF_MAGIC;
  h[i32(H.LAYOUT_VERSION)] = VIF_LAYOUT_VERSION;
  h[i32(H.QUEUE_SIZE)] = queueSize;
  h[i32(H.QUEUE_COUNT)] = QUEUE_COUNT;
  h[i32(H.DEVICE_FEATURES_LO)] = DEVICE_FEATURES.lo;
  h[i32(H.DEVICE_FEATURES_HI)] = DEVICE_FEATURES.hi;
  h[i32(H.MTU)] = mtu;
  h[i32(H.BUFFERS_OFFSET)] = L.buffersOffset;
  h[i32(H.BUFFERS_SIZE)] = L.buffersSize;
  h[i32(H.DOORBELL_BIT)] = slot;
  new Uint8Array(sab, H.MAC, 6).set(parseMac(mac)!);
  return sab;
}
