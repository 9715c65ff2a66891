/**
 * The driver-domain bridge's forwarding database: MAC -> port, learnt from source addresses and
 * aged out (IEEE 802.1D 7.9: dynamic filtering entries, ageing time default 300 s), plus static
 * entries the control plane installs for its guests' MACs (never learnt over, never aged).
 *
 * Open addressing with linear probing in typed arrays: no allocation, no string hashing on the
 * data path. Entries are never deleted in place (that would break probe chains): an aged entry is
 * a miss for lookup, may be overwritten by learn() for the same MAC, and disappears at the next
 * `sweep()`, which rebuilds the table. The table holds at most `capacity` entries (it is twice as
 * large, so probes stay short); a source seen when it is full is not learnt (`full` counts it),
 * and frames to it are flooded, which is what a full Linux bridge does too.
 *
 * Time is a parameter (`now`, ms) so tests are deterministic (ARCHITECTURE.md rule 9).
 */
import { macHi, macLo } from '../device/mac-table.js';

export const NO_PORT = -1;

export class Fdb {
  readonly capacity: number;
  readonly ageMs: number;
  private mask: number;
  private keyHi: Int32Array; // macHi + 1 (1..0x10000); 0 = empty
  private keyLo: Int32Array;
  private port: Int32Array;
  private seen: Float64Array; // last time the source was seen; Infinity = static
  /** Occupied slots (live, aged or static). */
  private used = 0;
  learned = 0;
  moved = 0;
  aged = 0;
  full = 0;
  /** A learnt source claimed a static entry's MAC from another port: not learnt. */
  staticConflicts = 0;

  constructor(capacity = 4096, ageMs = 300_000) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`fdb capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.ageMs = ageMs;
    let cap = 16;
    while (cap < capacity * 2) cap *= 2;
    this.mask = cap - 1;
    this.keyHi = new Int32Array(cap);
    this.keyLo = new Int32Array(cap);
    this.port = new Int32Array(cap);
    this.seen = new Float64Array(cap);
  }

  private static hash(hi: number, lo: number): number {
    let h = Math.imul(lo ^ (hi << 7), 0x9e3779b1);
    h ^= h >>> 15;
    return h;
  }

  /** Index of the MAC (hi, lo) or of the empty slot where its probe ends (keyHi 0 there). */
  private find(kh: number, lo: number): number {
    for (let i = Fdb.hash(kh, lo) & this.mask; ; i = (i + 1) & this.mask) {
      const k = this.keyHi[i]!;
      if (k === 0 || (k === kh && this.keyLo[i] === lo)) return i;
    }
  }

  /** Port for the destination MAC at b[off..off+6], or NO_PORT (unknown or aged: flood). */
  lookup(b: Uint8Array, off: number, now: number): number {
    const i = this.find(macHi(b, off) + 1, macLo(b, off));
    if (this.keyHi[i] === 0 || now - this.seen[i]! > this.ageMs) return NO_PORT;
    return this.port[i]!;
  }

  /**
   * Learn the source MAC at b[off..off+6] on `port` (802.1D 7.8). Group addresses are never
   * sources (the caller drops such frames); static entries are not overwritten.
   */
  learn(b: Uint8Array, off: number, port: number, now: number): void {
    const kh = macHi(b, off) + 1;
    const lo = macLo(b, off);
    const i = this.find(kh, lo);
    if (this.keyHi[i] !== 0) {
      if (this.seen[i] === Infinity) {
        if (this.port[i] !== port) this.staticConflicts++;
        return;
      }
      if (this.port[i] !== port) {
        this.port[i] = port;
        this.moved++;
      }
      this.seen[i] = now;
      return;
    }
    if (this.used >= this.capacity) {
      this.full++;
      return;
    }
    this.keyHi[i] = kh;
    this.keyLo[i] = lo;
    this.port[i] = port;
    this.seen[i] = now;
    this.used++;
    this.learned++;
  }

  /** Install a static entry (control plane): its port wins over anything learnt. */
  addStatic(mac: Uint8Array, port: number): void {
    const kh = macHi(mac, 0) + 1;
    const lo = macLo(mac, 0);
    const i = this.find(kh, lo);
    if (this.keyHi[i] === 0) {
      this.used++;
      this.keyHi[i] = kh;
      this.keyLo[i] = lo;
    }
    this.port[i] = port;
    this.seen[i] = Infinity;
  }

  /** Forget every entry on `port` (a netif went away) and every aged entry: rebuild. */
  removePort(port: number, now: number): void {
    this.rebuild(now, port);
  }

  /** Drop aged entries (call now and then, off the per-frame path). */
  sweep(now: number): void {
    this.rebuild(now, NO_PORT - 1);
  }

  private rebuild(now: number, dropPort: number): void {
    const kh = this.keyHi;
    const kl = this.keyLo;
    const pt = this.port;
    const sn = this.seen;
    let stale = 0;
    for (let i = 0; i <= this.mask; i++) {
      if (kh[i] !== 0 && (pt[i] === dropPort || now - sn[i]! > this.ageMs)) stale++;
    }
    if (stale === 0) return;
    this.keyHi = new Int32Array(kh.length);
    this.keyLo = new Int32Array(kh.length);
    this.port = new Int32Array(kh.length);
    this.seen = new Float64Array(kh.length);
    this.used = 0;
    for (let i = 0; i < kh.length; i++) {
      if (kh[i] === 0) continue;
      if (pt[i] === dropPort) continue;
      if (now - sn[i]! > this.ageMs) {
        this.aged++;
        continue;
      }
      const j = this.find(kh[i]!, kl[i]!);
      this.keyHi[j] = kh[i]!;
      this.keyLo[j] = kl[i]!;
      this.port[j] = pt[i]!;
      this.seen[j] = sn[i]!;
      this.used++;
    }
  }

  /** Entries in the table, aged ones included until the next sweep. */
  get size(): number {
    return this.used;
  }
}
