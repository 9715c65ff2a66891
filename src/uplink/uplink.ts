/**
 * An uplink is the device's physical port. Whatever its kind, it meets the engines at the same
 * place: per engine, one device-owned frame ring toward the uplink (the engine produces) and any
 * number of rings from it (the engine consumes); see layout/frame-ring.ts. Ring meta is the
 * segment. A `null` uplink has no rings: engines count the frames as sent and drop them.
 */
import type { Device } from '../hypervisor/device.js';

export interface Uplink {
  readonly kind: string;
  /** Counters of the uplink itself (not of the device), by name. */
  counters(): Record<string, number>;
  stop(): Promise<void>;
}

/** The default uplink: a counted sink (uplink_tx_frames) that never delivers anything. */
export class NullUplink implements Uplink {
  readonly kind = 'null';
  constructor(readonly device: Device) {}
  counters(): Record<string, number> {
    const d = this.device.deviceCounters();
    return { sunk_frames: d.uplink_tx_frames, sunk_bytes: d.uplink_tx_bytes };
  }
  async stop(): Promise<void> {}
}
