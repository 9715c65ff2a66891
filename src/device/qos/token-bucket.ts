/**
 * A token bucket in two dimensions at once, bytes and frames, for per-VIF rate limits (guest TX,
 * guest RX), guarantees and the uplink port's capacity. Pure: no clock of its own, `now` (ms, the
 * engine's performance.now() clock) is a parameter; no allocation after construction.
 *
 * Debt, not look-ahead: a frame's length is only known once the device has taken it from the
 * guest's ring, so the bucket admits while it holds any tokens (`conforms()`: bytes > 0 and at
 * least one frame token) and the caller charges what it really took (`charge`). The balance may
 * go negative by at most one frame; the next frame waits until it is paid back. Over any interval
 * T the bytes admitted are at most burst + rate x T + one frame, so the long-run rate is exact.
 *
 * A rate of 0 in a dimension means "no limit in that dimension".
 *
 * Backlog catch-up: the burst caps what a sender saves up while it has nothing to send. A sender
 * that is *backlogged* (frames waiting in its ring) but not served because the device itself was
 * not running (an engine thread descheduled for longer than the burst, common on a loaded
 * machine) has not been idle: refilled with `backlogged`, the bucket may save up to `catchUpMs`
 * at the rate, so the device pays that stall back and the long-run rate holds. Any interval's
 * bytes stay below max(burst, rate x catchUpMs) + rate x T + one frame.
 */

export class TokenBucket {
  /** Bytes per ms (0 = unlimited). */
  bytesPerMs = 0;
  burstBytes = 0;
  /** Current byte balance (may be negative: debt). */
  bytes = 0;
  /** Frames per ms (0 = unlimited). */
  framesPerMs = 0;
  burstFrames = 0;
  frames = 0;
  /** Time of the last refill (ms). */
  last = 0;
  /** How much of a device stall a backlogged sender may catch up (ms at the rate). */
  catchUpMs = 100;

  /** Any limit at all? */
  get limited(): boolean {
    return this.bytesPerMs !== 0 || this.framesPerMs !== 0;
  }

  /**
   * Set rates (bits/s, frames/s; 0 = unlimited) and bursts (bytes, frames; 0 = default: 5 ms at
   * the rate, at least 16 KiB or 32 frames). Keeps the current balance, clipped to the new burst,
   * so a change under traffic neither forgives debt nor grants a fresh burst.
   */
  set(bitsPerSec: number, burstBytes: number, framesPerSec: number, burstFrames: number, now: number): void {
    this.refill(now);
    const wasLimited = this.limited;
    this.bytesPerMs = bitsPerSec / 8 / 1000;
    this.framesPerMs = framesPerSec / 1000;
    this.burstBytes = this.bytesPerMs === 0 ? 0 : burstBytes > 0 ? burstBytes : Math.max(16384, this.bytesPerMs * 5);
    this.burstFrames = this.framesPerMs === 0 ? 0 : burstFrames > 0 ? burstFrames : Math.max(32, this.framesPerMs * 5);
    if (!wasLimited) {
      // A bucket that starts limiting starts full.
      this.bytes = this.burstBytes;
      this.frames = this.burstFrames;
    } else {
      this.bytes = Math.min(this.bytes, this.burstBytes);
      this.frames = Math.min(this.frames, this.burstFrames);
    }
    this.last = now;
  }

  /**
   * Add the tokens earned since the last refill, up to the bursts, or, for a `backlogged` sender,
   * up to catchUpMs at the rate (see above).
   */
  refill(now: number, backlogged = false): void {
    const dt = now - this.last;
    if (dt < 0) return;
    this.last = now;
    if (this.bytesPerMs !== 0) {
      const cap = backlogged ? Math.max(this.burstBytes, this.bytesPerMs * this.catchUpMs) : this.burstBytes;
      const b = this.bytes + dt * this.bytesPerMs;
      this.bytes = b > cap ? cap : b;
    }
    if (this.framesPerMs !== 0) {
      const cap = backlogged ? Math.max(this.burstFrames, this.framesPerMs * this.catchUpMs) : this.burstFrames;
      const f = this.frames + dt * this.framesPerMs;
      this.frames = f > cap ? cap : f;
    }
  }

  /** May the next frame go now (whatever its size)? */
  conforms(): boolean {
    return (this.bytesPerMs === 0 || this.bytes > 0) && (this.framesPerMs === 0 || this.frames >= 1);
  }

  /** Bytes that may start now (Infinity when bytes are not limited). Frames may overshoot by one. */
  byteBudget(): number {
    return this.bytesPerMs === 0 ? Infinity : this.bytes;
  }

  /** Whole frames that may go now (Infinity when frames are not limited). */
  frameBudget(): number {
    return this.framesPerMs === 0 ? Infinity : Math.floor(this.frames);
  }

  /** Pay for what was taken. */
  charge(bytes: number, frames: number): void {
    if (this.bytesPerMs !== 0) this.bytes -= bytes;
    if (this.framesPerMs !== 0) this.frames -= frames;
  }

  /** Milliseconds from the last refill until the balance covers `bytes` and `frames` more. */
  waitFor(bytes: number, frames: number): number {
    let w = 0;
    if (this.bytesPerMs !== 0 && this.bytes < bytes) w = (bytes - this.bytes) / this.bytesPerMs;
    if (this.framesPerMs !== 0 && this.frames < frames) {
      const f = (frames - this.frames) / this.framesPerMs;
      if (f > w) w = f;
    }
    return w;
  }

  /** Milliseconds from the last refill until conforms() holds again (0 if it holds). */
  waitMs(): number {
    let w = 0;
    if (this.bytesPerMs !== 0 && this.bytes <= 0) w = (-this.bytes) / this.bytesPerMs + 1e-6;
    if (this.framesPerMs !== 0 && this.frames < 1) {
      const f = (1 - this.frames) / this.framesPerMs;
      if (f > w) w = f;
    }
    return w;
  }
}
