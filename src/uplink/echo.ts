/**
 * `echo`: an uplink that answers everything: each frame the device sends to it comes straight back
 * with destination and source MAC swapped, as from a remote host that replies at once. It runs
 * inside the engines (no thread of its own), so a guest-to-echo round trip involves exactly two
 * threads: the guest and its engine. Used for latency benchmarks and as a loopback in configs.
 */
import type { Device } from '../hypervisor/device.js';
import { SvnicError } from '../hypervisor/errors.js';
import type { Uplink } from './uplink.js';

export class EchoUplink implements Uplink {
  readonly kind = 'echo';
  private constructor(private readonly dev: Device) {}

  static async attach(dev: Device): Promise<EchoUplink> {
    if (dev.uplinkKind !== 'null') throw new SvnicError('UPLINK_IN_USE', `device ${dev.name} already has a ${dev.uplinkKind} uplink`);
    for (let i = 0; i < dev.engineCount; i++) await dev.attachUplink(i, null, [], true);
    dev.uplinkKind = 'echo';
    return new EchoUplink(dev);
  }

  counters(): Record<string, number> {
    return { echoed_frames: this.dev.deviceCounters().uplink_rx_frames };
  }

  async stop(): Promise<void> {}
}
