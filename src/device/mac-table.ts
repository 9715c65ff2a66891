/**
 * The device's L2 table: (segment, MAC) -> VIF slot, as an open-addressing hash in typed arrays so
 * that a lookup on the data path neither allocates nor hashes strings. The control plane owns the
 * contents; engines get a full snapshot on every change and rebuild (changes are rare).
 */

export interface MacEntry {
  segment: number;
  mac: string; // "02:00:00:00:00:01"
  slot: number;
}

export function parseMac(mac: string): Uint8Array | null {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(mac);
  if (!m) return null;
  return Uint8Array.from(m.slice(1).map((h) => parseInt(h, 16)));
}

export const formatMac = (b: Uint8Array, off = 0): string =>
  Array.from(b.subarray(off, off + 6), (x) => x.toString(16).padStart(2, '0')).join(':');

/** High 16 bits of a MAC at b[off..off+6] (bytes 0-1). */
export const macHi = (b: Uint8Array, off: number): number => (b[off]! << 8) | b[off + 1]!;
/** Low 32 bits of a MAC at b[off..off+6] (bytes 2-5), as a signed int32. */
export const macLo = (b: Uint8Array, off: number): number =>
  (b[off + 2]! << 24) | (b[off + 3]! << 16) | (b[off + 4]! << 8) | b[off + 5]!;

export class MacTable {
  private keyHi: Int32Array; // (segment << 16 | macHi) + 1; 0 = empty
  private keyLo: Int32Array;
  private value: Int32Array;
  private mask: number;

  constructor(entries: readonly MacEntry[] = []) {
    let cap = 16;
    while (cap < entries.length * 4) cap *= 2;
    this.mask = cap - 1;
    this.keyHi = new Int32Array(cap);
    this.keyLo = new Int32Array(cap);
    this.value = new Int32Array(cap);
    for (const e of entries) {
      const b = parseMac(e.mac);
      if (!b) throw new RangeError(`bad MAC ${e.mac}`);
      this.insert(e.segment, macHi(b, 0), macLo(b, 0), e.slot);
    }
  }

  private static hash(hi: number, lo: number): number {
    let h = Math.imul(lo ^ (hi << 7), 0x9e3779b1);
    h ^= h >>> 15;
    return h;
  }

  private insert(segment: number, hi: number, lo: number, slot: number): void {
    const kh = ((segment << 16) | hi) + 1;
    for (let i = MacTable.hash(kh, lo) & this.mask; ; i = (i + 1) & this.mask) {
      if (this.keyHi[i] === 0 || (this.keyHi[i] === kh && this.keyLo[i] === lo)) {
        this.keyHi[i] = kh;
        this.keyLo[i] = lo;
        this.value[i] = slot;
        return;
      }
    }
  }

  /** Slot for the MAC at b[off..off+6] in `segment`, or -1. */
  lookup(segment: number, b: Uint8Array, off: number): number {
    const kh = ((segment << 16) | macHi(b, off)) + 1;
    const lo = macLo(b, off);
    for (let i = MacTable.hash(kh, lo) & this.mask; ; i = (i + 1) & this.mask) {
      const k = this.keyHi[i]!;
      if (k === 0) return -1;
      if (k === kh && this.keyLo[i] === lo) return this.value[i]!;
    }
  }
}
