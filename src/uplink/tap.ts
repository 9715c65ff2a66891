/**
 * `tap`: the device's uplink is a Linux TAP interface (a virtual Ethernet port of the host's own
 * kernel), opened with TUNSETIFF (IFF_TAP | IFF_NO_PI) through the native addon. Frames the device
 * sends to its uplink appear on the interface as received frames, and what the kernel transmits
 * on it comes into the device: the host's stack is the other end of the cable.
 *
 * Two worker threads move the frames (tap-worker.ts). One segment of the device is bridged to the
 * interface (default 0); frames of other segments are counted (tx_wrong_segment). The interface
 * is created down and without addresses: configure it with `ip` as usual (it disappears when the
 * uplink stops, as TAP interfaces without IFF_PERSIST do).
 */
import { Worker } from 'node:worker_threads';
import type { Device } from '../hypervisor/device.js';
import { SvnicError } from '../hypervisor/errors.js';
import { MAX_SEGMENT } from '../device/switch.js';
import { native } from '../native/index.js';
import { createUplinkCounters, readUplinkCounters } from '../layout/uplink-counters.js';
import { CaptureDrain, createCaptureRing } from '../capture/capture-ring.js';
import { PcapWriter } from '../capture/pcap.js';
import { W } from '../layout/doorbell.js';
import { attachUplinkRings, detachUplinkRings, makeUplinkRings } from './rings.js';
import { TAP_COUNTERS } from './tap-counters.js';
import type { TapWorkerData } from './tap-worker.js';
import type { Uplink } from './uplink.js';

export interface TapOptions {
  /** Interface name (default: the kernel picks tapN). */
  ifname?: string;
  /** The device segment bridged to the interface (default 0). */
  segment?: number;
}

export class TapUplink implements Uplink {
  readonly kind = 'tap';
  private stopped: Promise<void> | null = null;

  private constructor(
    readonly device: Device,
    /** The interface's name as the kernel gave it. */
    readonly ifname: string,
    private readonly fd: number,
    private readonly workers: Worker[],
    private readonly countersSab: SharedArrayBuffer,
    private readonly stopWord: Int32Array,
    private readonly wakePage: Int32Array,
    private readonly drain: CaptureDrain,
  ) {
    device.once('stopped', () => void this.stop()); // its workers must not outlive the device
  }

  static async attach(dev: Device, opts: TapOptions = {}): Promise<TapUplink> {
    const segment = opts.segment ?? 0;
    if (!Number.isInteger(segment) || segment < 0 || segment > MAX_SEGMENT) throw new SvnicError('BAD_OPTION', `tap: segment must be in 0..${MAX_SEGMENT}, got ${segment}`);
    if (opts.ifname !== undefined && !/^[A-Za-z0-9_.-]{1,15}$/.test(opts.ifname)) throw new SvnicError('BAD_OPTION', `tap: ifname must be 1-15 letters, digits, "_", "." or "-", got "${opts.ifname}"`);
    const rings = makeUplinkRings(dev);
    let tun: { fd: number; name: string };
    try {
      tun = native().tunOpen(opts.ifname ?? '', true);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new SvnicError('UPLINK_FAILED', `tap: cannot open a TAP interface${opts.ifname ? ` "${opts.ifname}"` : ''}: ${(e as Error).message}` +
        (code === 'EPERM' || code === 'EACCES' ? ' (needs CAP_NET_ADMIN: run as root)' : code === 'EBUSY' ? ' (the name is in use by another interface)' : ''));
    }
    const counters = createUplinkCounters(TAP_COUNTERS);
    const stop = new SharedArrayBuffer(64);
    const caps = [createCaptureRing(), createCaptureRing()];
    const workers = (['toKernel', 'fromKernel'] as const).map((role, i) => {
      const data: TapWorkerData = { role, fd: tun.fd, segment, rings, counters, stop, capture: caps[i]!, batch: 32 };
      return new Worker(new URL('./tap-worker.js', import.meta.url), { workerData: data, name: `svnic-tap-${role}-${tun.name}` });
    });
    const up = new TapUplink(dev, tun.name, tun.fd, workers, counters, new Int32Array(stop), new Int32Array(rings.wake), new CaptureDrain(caps));
    try {
      await attachUplinkRings(dev, rings, 'tap');
    } catch (e) {
      await up.stop();
      throw e;
    }
    return up;
  }

  counters(): Record<string, number> {
    return { ...readUplinkCounters(this.countersSab, TAP_COUNTERS), capture_dropped: this.drain.dropped() };
  }

  /** Write the frames crossing the interface to a pcap file (null: stop). */
  async capture(path: string | null): Promise<void> {
    if (path === null) return this.drain.stop();
    let w: PcapWriter;
    try {
      w = PcapWriter.open(path);
    } catch (e) {
      throw new SvnicError('BAD_OPTION', `capture: cannot write ${path}: ${(e as Error).message}`);
    }
    this.drain.start(w);
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await detachUplinkRings(this.device);
      Atomics.store(this.stopWord, 0, 1);
      Atomics.add(this.wakePage, W.WAKE, 1);
      Atomics.notify(this.wakePage, W.WAKE);
      await Promise.all(this.workers.map((w) => new Promise((r) => (w.threadId < 0 ? r(0) : w.once('exit', r)))));
      this.drain.stop();
      try {
        native().close(this.fd);
      } catch {
        // already closed
      }
    })();
    return this.stopped;
  }
}
