/**
 * ARP (RFC 826) for IPv4 over Ethernet: a cache of IP -> MAC with a lifetime, and frames waiting
 * for a resolution. Time (`now`, ms) is a parameter.
 *
 * ```
 *  ARP packet (after the 14-byte Ethernet header, ethertype 0x0806), 28 bytes
 *  0 htype u16 (1 Ethernet) | 2 ptype u16 (0x0800) | 4 hlen u8 (6) | 5 plen u8 (4) | 6 op u16 (1 req, 2 reply)
 *  8 sender MAC (6) | 14 sender IP (4) | 18 target MAC (6) | 24 target IP (4)
 * ```
 */

export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
export const ARP_BYTES = 28;

interface Entry {
  mac: Uint8Array;
  expires: number;
}

interface Pending {
  frames: Uint8Array[];
  /** When the next request goes out, and how many went already. */
  nextTry: number;
  tries: number;
}

export class ArpCache {
  private readonly entries = new Map<number, Entry>();
  private readonly pending = new Map<number, Pending>();

  constructor(
    /** How long an entry lives (ms). */
    readonly lifetimeMs = 60_000,
    /** Frames held per unresolved address. */
    readonly maxQueued = 16,
    /** Requests before giving up, and the gap between them (ms). */
    readonly maxTries = 3,
    readonly retryMs = 1000,
    /** Entries at most (a hostile network could announce many addresses). */
    readonly maxEntries = 1024,
  ) {}

  lookup(ip: number, now: number): Uint8Array | null {
    const e = this.entries.get(ip);
    if (e === undefined) return null;
    if (now >= e.expires) {
      this.entries.delete(ip);
      return null;
    }
    return e.mac;
  }

  /** Store or refresh ip -> mac (copied from b[off..off+6]). Returns the frames that waited for it. */
  learn(ip: number, b: Uint8Array, off: number, now: number): Uint8Array[] {
    let e = this.entries.get(ip);
    if (e === undefined) {
      if (this.entries.size >= this.maxEntries) this.evictOldest();
      e = { mac: new Uint8Array(6), expires: 0 };
      this.entries.set(ip, e);
    }
    e.mac.set(b.subarray(off, off + 6));
    e.expires = now + this.lifetimeMs;
    const p = this.pending.get(ip);
    if (p === undefined) return [];
    this.pending.delete(ip);
    return p.frames;
  }

  has(ip: number): boolean {
    return this.entries.has(ip);
  }

  private evictOldest(): void {
    let oldest = -1;
    let when = Infinity;
    for (const [ip, e] of this.entries) if (e.expires < when) (when = e.expires), (oldest = ip);
    if (oldest >= 0) this.entries.delete(oldest);
  }

  /**
   * Hold a frame until `ip` resolves. Returns 'request' when a request should go out now,
   * 'queued' when one is already on its way, 'full' when the queue is full (drop the frame).
   */
  enqueue(ip: number, frame: Uint8Array, now: number): 'request' | 'queued' | 'full' {
    let p = this.pending.get(ip);
    if (p === undefined) {
      p = { frames: [], nextTry: now + this.retryMs, tries: 1 };
      this.pending.set(ip, p);
      p.frames.push(frame);
      return 'request';
    }
    if (p.frames.length >= this.maxQueued) return 'full';
    p.frames.push(frame);
    return 'queued';
  }

  /**
   * Timers: returns the addresses to ask again, and drops (returning their count) the frames of
   * addresses that did not answer `maxTries` requests. Expired entries are removed.
   */
  tick(now: number, retry: (ip: number) => void): { dropped: number; expired: number } {
    let dropped = 0;
    let expired = 0;
    for (const [ip, p] of this.pending) {
      if (now < p.nextTry) continue;
      if (p.tries >= this.maxTries) {
        dropped += p.frames.length;
        this.pending.delete(ip);
      } else {
        p.tries++;
        p.nextTry = now + this.retryMs;
        retry(ip);
      }
    }
    for (const [ip, e] of this.entries) {
      if (now >= e.expires) {
        this.entries.delete(ip);
        expired++;
      }
    }
    return { dropped, expired };
  }

  /** The earliest time tick() has something to do, or Infinity. */
  nextDeadline(): number {
    let t = Infinity;
    for (const p of this.pending.values()) t = Math.min(t, p.nextTry);
    for (const e of this.entries.values()) t = Math.min(t, e.expires);
    return t;
  }

  snapshot(): { ip: number; mac: Uint8Array; expires: number }[] {
    return [...this.entries].map(([ip, e]) => ({ ip, mac: e.mac, expires: e.expires }));
  }
}
