/**
 * `wire`: two devices' uplinks joined back to back, like two hosts on one cable. Engine i of one
 * device produces into a ring that engine (i mod n) of the other consumes, so every ring keeps a
 * single producer and a single consumer; the receiving engine forwards to the VIF's own engine if
 * needed. The segment travels with the frame (like a VLAN trunk).
 */
import { createFrameRing } from '../layout/frame-ring.js';
import { maxFrameBytes } from '../layout/vif.js';
import { MAX_MTU, type Device } from '../hypervisor/device.js';
import { SvnicError } from '../hypervisor/errors.js';
import type { Uplink } from './uplink.js';

export class Wire implements Uplink {
  readonly kind = 'wire';
  private constructor(readonly a: Device, readonly b: Device) {}

  static async connect(a: Device, b: Device): Promise<Wire> {
    if (a === b) throw new SvnicError('BAD_OPTION', 'a wire joins two different devices');
    for (const d of [a, b]) {
      if (d.uplinkKind !== 'null') throw new SvnicError('UPLINK_IN_USE', `device ${d.name} already has a ${d.uplinkKind} uplink`);
    }
    const one = (from: Device, to: Device) => {
      const out: { ring: SharedArrayBuffer; wake: SharedArrayBuffer }[] = [];
      const into: SharedArrayBuffer[][] = Array.from({ length: to.engineCount }, () => []);
      for (let i = 0; i < from.engineCount; i++) {
        const ring = createFrameRing(from.ringSlots, maxFrameBytes(MAX_MTU));
        const j = i % to.engineCount;
        out.push({ ring, wake: to.engineDoorbell(j) });
        into[j]!.push(ring);
      }
      return { out, into };
    };
    const ab = one(a, b);
    const ba = one(b, a);
    await Promise.all([
      ...ab.out.map((r, i) => a.attachUplink(i, r, ba.into[i]!)),
      ...ba.out.map((r, i) => b.attachUplink(i, r, ab.into[i]!)),
    ]);
    a.uplinkKind = b.uplinkKind = 'wire';
    return new Wire(a, b);
  }

  counters(): Record<string, number> {
    const a = this.a.deviceCounters();
    const b = this.b.deviceCounters();
    return { a_to_b_frames: a.uplink_tx_frames, b_to_a_frames: b.uplink_tx_frames };
  }

  async stop(): Promise<void> {}
}
