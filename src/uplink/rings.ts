/**
 * The rings between a device's engines and an uplink that runs on threads of its own (VXLAN, TAP):
 * per engine i, `toUplink[i]` (engine i produces, the uplink consumes; engines wake the uplink's
 * wake page) and `fromUplink[i]` (the uplink produces, engine i consumes; the uplink wakes engine
 * i's doorbell page). Every ring keeps one producer and one consumer (ARCHITECTURE, rule 1).
 * Ring meta is the segment, both ways (see device/switch.ts).
 */
import { createFrameRing } from '../layout/frame-ring.js';
import { createWakePage } from '../layout/doorbell.js';
import { maxFrameBytes } from '../layout/vif.js';
import { MAX_MTU, type Device } from '../hypervisor/device.js';
import { SvnicError } from '../hypervisor/errors.js';

export interface UplinkRings {
  /** The uplink thread's wake page (engines wake it after publishing toUplink). */
  wake: SharedArrayBuffer;
  toUplink: SharedArrayBuffer[];
  fromUplink: { ring: SharedArrayBuffer; wake: SharedArrayBuffer }[];
}

export function makeUplinkRings(dev: Device): UplinkRings {
  if (dev.uplinkKind !== 'null') throw new SvnicError('UPLINK_IN_USE', `device ${dev.name} already has a ${dev.uplinkKind} uplink; stop it first`);
  const wake = createWakePage(32);
  const toUplink: SharedArrayBuffer[] = [];
  const fromUplink: { ring: SharedArrayBuffer; wake: SharedArrayBuffer }[] = [];
  for (let i = 0; i < dev.engineCount; i++) {
    toUplink.push(createFrameRing(dev.ringSlots, maxFrameBytes(MAX_MTU)));
    fromUplink.push({ ring: createFrameRing(dev.ringSlots, maxFrameBytes(MAX_MTU)), wake: dev.engineDoorbell(i) });
  }
  return { wake, toUplink, fromUplink };
}

/** Give every engine its two rings. */
export async function attachUplinkRings(dev: Device, r: UplinkRings, kind: string): Promise<void> {
  await Promise.all(r.toUplink.map((ring, i) => dev.attachUplink(i, { ring, wake: r.wake }, [r.fromUplink[i]!.ring])));
  dev.uplinkKind = kind;
}

/** Back to the `null` uplink (engines count and sink what they send). Safe on a stopped device. */
export async function detachUplinkRings(dev: Device): Promise<void> {
  try {
    for (let i = 0; i < dev.engineCount; i++) await dev.attachUplink(i, null, []);
  } catch {
    // a stopped device has no engines to tell
  }
  dev.uplinkKind = 'null';
}
