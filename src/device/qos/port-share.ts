/**
 * The uplink port as one engine sees it: the share of the device's uplink capacity this engine
 * may use, recomputed from the demand every engine publishes in the QoS table (layout/qos.ts), so
 * that engines share one uplink by the weights and guarantees of their VIFs without sharing a
 * token bucket (which would need a lock or an atomic float on the data path).
 */
import { TokenBucket } from './token-bucket.js';
import { demandIndex, DEMAND_BYTES } from '../../layout/qos.js';

/**
 * The rate one engine shapes its uplink traffic to, from every engine's published demand. Pure.
 *
 *   rate = own reserved + (capacity - all reserved) x own weight / all weights
 *
 * "Reserved" is guarantees plus the bit-rate limits of limited VIFs (they claim what they can use).
 * Guarantees are admitted within the capacity but limits are not: reservations above the capacity
 * are scaled down to it. With no weight anywhere the rest is split evenly; an engine never goes
 * below `floor` x capacity (a trickle, so a VIF that starts sending is not stuck until the next
 * recompute).
 */
export function portShare(capacity: number, engines: number, ownWeight: number, ownGuaranteed: number,
  allWeight: number, allGuaranteed: number, floor = 0.001): number {
  let rate: number;
  if (allGuaranteed > capacity) rate = (capacity * ownGuaranteed) / allGuaranteed;
  else {
    const rest = capacity - allGuaranteed;
    rate = ownGuaranteed + (allWeight > 0 ? (rest * ownWeight) / allWeight : rest / engines);
  }
  return rate < capacity * floor ? capacity * floor : rate;
}

/** How often an engine recomputes its share of the uplink from all engines' demand (ms). */
export const SHARE_EVERY_MS = 0.5;

/**
 * One engine's end of the uplink port: a token bucket at this engine's share of the capacity
 * (no shaping without a capacity), and its demand line in the QoS table.
 */
export class UplinkPort {
  readonly bucket = new TokenBucket();
  /** Is the port shaped (a capacity is configured)? */
  on = false;
  /** The rate (bits/s) the bucket runs at now. */
  rate = 0;
  private capacity = 0;
  private shareAt = -Infinity;
  private readonly f64: Float64Array;
  private readonly mine: number;
  private readonly first: number;
  private readonly engines: number;

  constructor(table: SharedArrayBuffer, maxVifs: number, engine: number, engines: number) {
    this.f64 = new Float64Array(table);
    this.mine = demandIndex(maxVifs, engine);
    this.first = demandIndex(maxVifs, 0);
    this.engines = engines;
  }

  /** A new capacity (bits/s; 0 = none): start from an even split until the next reshare. */
  configure(capacityBps: number, now: number): void {
    this.capacity = capacityBps;
    this.rate = capacityBps / this.engines;
    this.bucket.set(this.rate, this.burst(), 0, 0, now);
    this.on = this.bucket.limited;
    this.shareAt = -Infinity;
  }

  /** Burst: 5 ms of the whole capacity, whatever this engine's share (no clipping when it moves). */
  private burst(): number {
    return (this.capacity / 8 / 1000) * 5;
  }

  /** Is it time to publish demand and reshape (only with several engines)? */
  due(now: number): boolean {
    return this.engines > 1 && now - this.shareAt >= SHARE_EVERY_MS;
  }

  /** Publish this engine's demand (weight, reserved bits/s) and reshape to its share. */
  reshare(now: number, weight: number, reserved: number): void {
    this.shareAt = now;
    const f = this.f64;
    f[this.mine] = weight;
    f[this.mine + 1] = reserved;
    let allW = 0;
    let allR = 0;
    const step = DEMAND_BYTES / 8;
    for (let e = 0; e < this.engines; e++) {
      allW += f[this.first + e * step]!;
      allR += f[this.first + e * step + 1]!;
    }
    const rate = portShare(this.capacity, this.engines, weight, reserved, allW, allR);
    if (Math.abs(rate - this.rate) > this.rate * 0.001) {
      this.rate = rate;
      this.bucket.set(rate, this.burst(), 0, 0, now);
    }
  }

  /** Closed: no tokens now (always open when not shaped). */
  closed(): boolean {
    return this.on && !this.bucket.conforms();
  }
}
