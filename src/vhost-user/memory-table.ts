/**
 * Guest memory of a VM from a vhost-user memory table (SET_MEM_TABLE): up to 8 regions, each a
 * file descriptor the back-end maps (MAP_SHARED) as a SharedArrayBuffer. Implements GuestMemory,
 * so the same VirtioNetDevice serves VMs and isolates.
 *
 * Two address spaces (vhost-user.rst, "Memory regions" / SET_VRING_ADDR): descriptors carry guest
 * physical addresses (GPA); SET_VRING_ADDR carries the front-end's user (virtual) addresses (UVA).
 * `gpaOfUva` converts the latter; anything outside every region is refused (-1), never mapped.
 */
import type { GuestMemory } from '../virtio/guest-memory.js';

export interface RegionSpec {
  gpa: number;
  size: number;
  uva: number;
  mmapOffset: number;
}

export interface MappedRegion extends RegionSpec {
  sab: SharedArrayBuffer;
  /** Byte offset in `sab` where the region starts (mmap offsets are rounded down to a page). */
  base: number;
}

export const PAGE = 4096;

export class VhostGuestMemory implements GuestMemory {
  hit: Uint8Array;
  hit32: Int32Array;
  readonly regions: MappedRegion[];
  private readonly u8: Uint8Array[];
  private readonly i32: Int32Array[];
  private readonly gpa: Float64Array;
  private readonly end: Float64Array;
  private readonly base: Int32Array;

  constructor(regions: MappedRegion[]) {
    this.regions = regions;
    this.u8 = regions.map((r) => new Uint8Array(r.sab));
    this.i32 = regions.map((r) => new Int32Array(r.sab, 0, r.sab.byteLength >>> 2));
    this.gpa = Float64Array.from(regions, (r) => r.gpa);
    this.end = Float64Array.from(regions, (r) => r.gpa + r.size);
    this.base = Int32Array.from(regions, (r) => r.base);
    this.hit = this.u8[0] ?? new Uint8Array(0);
    this.hit32 = this.i32[0] ?? new Int32Array(0);
  }

  /** GuestMemory contract: offset into `hit` of [addr, addr+len) if it lies inside one region, else -1. */
  resolve(addrLo: number, addrHi: number, len: number): number {
    if (addrHi >= 0x200000) return -1; // beyond 2^53: outside every region
    const a = addrHi * 4294967296 + addrLo;
    const g = this.gpa;
    const e = this.end;
    for (let i = 0; i < g.length; i++) {
      if (a >= g[i]! && a + len <= e[i]!) {
        this.hit = this.u8[i]!;
        this.hit32 = this.i32[i]!;
        return this.base[i]! + (a - g[i]!);
      }
    }
    return -1;
  }

  region(addr: number, len: number): { buffer: ArrayBufferLike; byteOffset: number } | null {
    for (const r of this.regions) {
      if (addr >= r.gpa && addr + len <= r.gpa + r.size) return { buffer: r.sab, byteOffset: r.base + (addr - r.gpa) };
    }
    return null;
  }

  /** Guest physical address of a front-end user address, or -1 when no region holds [uva, uva+len). */
  gpaOfUva(uva: number, len: number): number {
    for (const r of this.regions) if (uva >= r.uva && uva + len <= r.uva + r.size) return r.gpa + (uva - r.uva);
    return -1;
  }
}

/** Regions must be non-empty, page-sized multiples of 4 bytes, and must not overlap in GPA or UVA. */
export function regionsValid(rs: RegionSpec[]): string | null {
  for (const r of rs) {
    if (r.gpa < 0 || r.size <= 0 || r.uva < 0 || r.mmapOffset < 0) return 'region address or size beyond 2^53 or zero size';
    if (r.size % 4 !== 0) return 'region size not a multiple of 4';
    if (r.size > 2 ** 40) return 'region larger than 1 TiB';
  }
  for (let i = 0; i < rs.length; i++) {
    for (let j = i + 1; j < rs.length; j++) {
      const a = rs[i]!;
      const b = rs[j]!;
      if (a.gpa < b.gpa + b.size && b.gpa < a.gpa + a.size) return 'regions overlap in guest physical addresses';
      if (a.uva < b.uva + b.size && b.uva < a.uva + a.size) return 'regions overlap in user addresses';
    }
  }
  return null;
}
