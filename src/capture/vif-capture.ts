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
  /** The VIF each writer belongs to (a slot is reused by the next VIF once its VIF is gone). */
  readonly owners = new Map<number, Vif>();
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
    drain.onFlush = () => { for (const w of dc!.writers.values()) w.flush(); };
    for (let i = 0; i < device.engineCount; i++) await device.attachCapture(i, rings[i]!, slots);
    device.once('stopped', () => dc!.closeAll());
    // One listener per device (not one per capture call, which a long-running daemon changing
    // captures would pile up): close the file of a captured VIF that goes away.
    device.on('vif-destroyed', (v: Vif) => {
      if (dc!.owners.get(v.slot) === v) dc!.close(v.slot);
    });
    return dc;
  }

  /** Stop capturing slot `slot`: what is in flight still goes to its file, then it is closed. */
  close(slot: number): void {
    this.slots[slot] = 0;
    this.drain.drain();
    this.writers.get(slot)?.close();
    this.writers.delete(slot);
    this.owners.delete(slot);
  }

  closeAll(): void {
    this.slots.fill(0);
    this.drain.stop();
    for (const w of this.writers.values()) w.close();
    this.writers.clear();
    this.owners.clear();
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
  dc.close(slot); // what is in flight still goes to the old file
  if (path !== null) {
    let w: PcapWriter;
    try {
      w = PcapWriter.open(path);
    } catch (e) {
      throw new SvnicError('BAD_OPTION', `capture: cannot write ${path}: ${(e as Error).message}`);
    }
    dc.writers.set(slot, w);
    dc.owners.set(slot, vif);
    if (!dc.drain.active) dc.drain.start(null);
    dc.slots[slot] = 1;
  }
}

/** Frames the engines could not capture because a capture ring was full. */
export async function captureDropped(device: Device): Promise<number> {
  const p = byDevice.get(device);
  return p ? (await p).drain.dropped() : 0;
}
