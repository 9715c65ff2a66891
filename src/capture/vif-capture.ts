/**
 * Capturing a VIF's traffic: the frames its guest sends (as the device took them, before
 * anti-spoofing, so a spoofer is visible) and the frames the device delivers to it, each VIF to
 * its own pcap file. Each engine copies the frames of flagged VIFs into its own capture ring
 * (capture-ring.ts; meta = slot << 1 | direction); a drain on the main thread writes the files.
 * The per-slot flags are shared memory the control plane flips without messaging the engines.
 */
import type { Device, Vif } from '../hypervisor/device.js';
import { SvnicError } from '../hypervisor/errors.js';
import { CaptureDrain, createCaptureRing } from './capture-ring.js';
import { PcapWriter } from './pcap.js';

class DeviceCapture {
  readonly slots: Uint8Array;
  readonly writers = new Map<number, PcapWriter>();
  readonly drain: CaptureDrain;

  private constructor(readonly device: Device, slotsSab: SharedArrayBuffer, drain: CaptureDrain) {
    this.slots = new Uint8Array(slotsSab);
    this.drain = drain;
  }

  static async create(device: Device): Promise<DeviceCapture> {
    const slots = new SharedArrayBuffer(device.maxVifs);
    const rings = Array.from({ length: device.engineCount }, () => createCaptureRing());
    let dc: DeviceCapture | null = null;
    const drain = new CaptureDrain(rings, (meta) => dc!.writers.get(meta >>> 1) ?? null);
    dc = new DeviceCapture(device, slots, drain);
    for (let i = 0; i < device.engineCount; i++) await device.attachCapture(i, rings[i]!, slots);
    device.once('stopped', () => dc!.closeAll());
    return dc;
  }

  closeAll(): void {
    this.slots.fill(0);
    this.drain.stop();
    for (const w of this.writers.values()) w.close();
    this.writers.clear();
  }
}

const byDevice = new WeakMap<Device, Promise<DeviceCapture>>();

/** Start writing `vif`'s traffic to `path` (replacing an earlier capture of it), or stop (null). */
export async function captureVif(vif: Vif, path: string | null): Promise<void> {
  const device = vif.device;
  let p = byDevice.get(device);
  if (!p) {
    if (path === null) return;
    p = DeviceCapture.create(device);
    byDevice.set(device, p);
  }
  const dc = await p;
  const slot = vif.slot;
  dc.slots[slot] = 0;
  dc.drain.drain(); // what is in flight still goes to the old file
  dc.writers.get(slot)?.close();
  dc.writers.delete(slot);
  if (path !== null) {
    let w: PcapWriter;
    try {
      w = PcapWriter.open(path);
    } catch (e) {
      throw new SvnicError('BAD_OPTION', `capture: cannot write ${path}: ${(e as Error).message}`);
    }
    dc.writers.set(slot, w);
    if (!dc.drain.active) dc.drain.start(null);
    dc.slots[slot] = 1;
  }
  // close the file of a VIF that goes away
  if (path !== null) {
    device.once('vif-destroyed', function onGone(v: Vif) {
      if (v !== vif) return void device.once('vif-destroyed', onGone);
      dc.slots[slot] = 0;
      dc.drain.drain();
      dc.writers.get(slot)?.close();
      dc.writers.delete(slot);
    });
  }
}

/** Frames the engines could not capture because a capture ring was full. */
export async function captureDropped(device: Device): Promise<number> {
  const p = byDevice.get(device);
  return p ? (await p).drain.dropped() : 0;
}
