/**
 * `echo`: an uplink port that reflects every frame back into the device with its MAC addresses
 * swapped, from its own worker thread. It stands in for a remote host that answers at once, for
 * latency benchmarks (guest -> device -> uplink -> device -> guest).
 */
import { Worker } from 'node:worker_threads';
import { createFrameRing } from '../layout/frame-ring.js';
import { createWakePage, W } from '../layout/doorbell.js';
import { maxFrameBytes } from '../layout/vif.js';
import { MAX_MTU, type Device } from '../hypervisor/device.js';
import { SvnicError } from '../hypervisor/errors.js';
import type { Uplink } from './uplink.js';

export class EchoUplink implements Uplink {
  readonly kind = 'echo';
  private readonly stats: Float64Array;
  private constructor(private readonly worker: Worker, private readonly page: SharedArrayBuffer, stats: SharedArrayBuffer) {
    this.stats = new Float64Array(stats);
  }

  static async attach(dev: Device, opts: { spinUs?: number } = {}): Promise<EchoUplink> {
    if (dev.uplinkKind !== 'null') throw new SvnicError('UPLINK_IN_USE', `device ${dev.name} already has a ${dev.uplinkKind} uplink`);
    const page = createWakePage(32);
    const stats = new SharedArrayBuffer(16);
    const pairs: { toUplink: SharedArrayBuffer; fromUplink: SharedArrayBuffer; wake: SharedArrayBuffer }[] = [];
    for (let i = 0; i < dev.engineCount; i++) {
      pairs.push({
        toUplink: createFrameRing(dev.ringSlots, maxFrameBytes(MAX_MTU)),
        fromUplink: createFrameRing(dev.ringSlots, maxFrameBytes(MAX_MTU)),
        wake: dev.engineDoorbell(i),
      });
    }
    const worker = new Worker(new URL('./echo-worker.js', import.meta.url), {
      workerData: { page, stats, pairs, spinUs: opts.spinUs ?? 100 },
      name: `svnic-echo-${dev.name}`,
    });
    await Promise.all(pairs.map((p, i) => dev.attachUplink(i, { ring: p.toUplink, wake: page }, [p.fromUplink])));
    dev.uplinkKind = 'echo';
    return new EchoUplink(worker, page, stats);
  }

  counters(): Record<string, number> {
    return { echoed_frames: this.stats[0]!, echo_full: this.stats[1]! };
  }

  async stop(): Promise<void> {
    const p = new Int32Array(this.page);
    Atomics.store(p, W.CONTROL, 1);
    Atomics.add(p, W.WAKE, 1);
    Atomics.notify(p, W.WAKE, 1);
    await new Promise((r) => this.worker.once('exit', r));
  }
}
