/**
 * Guest memory as the device sees it: translate a guest address range into bytes the device may
 * read or write, or refuse. Written once and used by the same device code for isolate guests (one
 * SharedArrayBuffer per VIF; addresses are byte offsets) and for VMs (vhost-user memory table).
 *
 * Contract of `resolve`: given a 64-bit address as (lo, hi) u32 halves and a length, return the
 * byte offset into `this.hit` where the range starts, or -1 when any byte of it is outside guest
 * memory. It never throws and never allocates. `hit` is only meaningful after a successful resolve.
 */
export interface GuestMemory {
  hit: Uint8Array;
  /** Int32 view of the same bytes as `hit` (from byte 0), for word copies. */
  hit32: Int32Array;
  resolve(addrLo: number, addrHi: number, len: number): number;
  /** Typed view for ring structures (set-up time only; may allocate). Null if out of range. */
  region(addr: number, len: number): { buffer: ArrayBufferLike; byteOffset: number } | null;
}

/** An isolate's VIF buffer: guest address = byte offset; only [lowest, byteLength) is guest memory. */
export class SabGuestMemory implements GuestMemory {
  hit: Uint8Array;
  hit32: Int32Array;
  private readonly lowest: number;
  private readonly end: number;

  constructor(sab: SharedArrayBuffer, lowest: number) {
    this.hit = new Uint8Array(sab);
    this.hit32 = new Int32Array(sab, 0, sab.byteLength >>> 2);
    this.lowest = lowest;
    this.end = sab.byteLength;
  }

  resolve(addrLo: number, addrHi: number, len: number): number {
    if (addrHi !== 0 || addrLo < this.lowest || len > this.end || addrLo > this.end - len) return -1;
    return addrLo;
  }

  region(addr: number, len: number): { buffer: ArrayBufferLike; byteOffset: number } | null {
    if (addr < this.lowest || addr + len > this.end) return null;
    return { buffer: this.hit.buffer, byteOffset: addr };
  }
}
