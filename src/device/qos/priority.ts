/**
 * Strict priority with a starvation bound. VIFs with priority > 0 are served before the weighted
 * (DRR) VIFs, highest class first, and the engine polls them again before every DRR visit, so a
 * latency-sensitive frame waits for at most one other VIF's turn instead of a whole round.
 *
 * Strict priority alone lets a greedy high-priority VIF starve everyone else. Two bounds stop it:
 *  - per engine iteration the priority classes together take at most `framesPerRound` frames
 *    (default: the engine's batch), after which every backlogged DRR VIF gets its turn;
 *  - when the uplink's capacity is configured, the priority classes together may use at most
 *    `share` of it (a token bucket at share x capacity); beyond that a priority VIF waits like the
 *    others. (A priority VIF that also has its own rate limit is bounded by that too.)
 *
 * Pure: `now` is a parameter; no allocation after construction.
 */
import { TokenBucket } from './token-bucket.js';

export class PriorityBound {
  framesPerRound: number;
  private used = 0;
  /** share x capacity (unlimited when the capacity is unknown). */
  readonly share = new TokenBucket();

  constructor(framesPerRound: number) {
    this.framesPerRound = framesPerRound;
  }

  /** Configure the share of the uplink capacity (bits/s; 0 = no capacity known: no share bound). */
  setShare(capacityBitsPerSec: number, share: number, now: number): void {
    this.share.set(capacityBitsPerSec * share, 0, 0, 0, now);
  }

  /** Start an engine iteration. */
  beginRound(now: number): void {
    this.used = 0;
    this.share.refill(now);
  }

  /** Frames the priority classes may still take in this iteration (0: bound reached). */
  frames(): number {
    if (!this.share.conforms()) return 0;
    const left = this.framesPerRound - this.used;
    return left > 0 ? left : 0;
  }

  /** Bytes the priority classes may still start now (Infinity without a capacity). */
  bytes(): number {
    return this.share.byteBudget();
  }

  charge(frames: number, bytes: number): void {
    this.used += frames;
    this.share.charge(bytes, frames);
  }
}
