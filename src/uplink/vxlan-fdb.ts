/**
 * The VXLAN uplink's forwarding table (RFC 7348, 4.1 and 4.2): per VNI, a static list of remote
 * VTEPs that get every unknown, broadcast and multicast frame (head-end replication, the unicast
 * form of the RFC's multicast flooding), plus inner source MACs learned against the outer source
 * address of received packets, each forgotten after `ageingMs` without traffic.
 *
 * Time is a parameter (`now`, ms) so tests are deterministic. Lookups and refreshes do not
 * allocate; learning a new MAC allocates one small entry (bounded per VNI by `maxLearned`, because
 * the network is hostile and could otherwise fill memory with made-up MACs).
 */
import { macHi, macLo } from '../device/mac-table.js';

export interface LearnedEntry {
  addr: string;
  seen: number;
}

export const LEARN_NONE = 0;
export const LEARN_NEW = 1;
export const LEARN_MOVED = 2;
export const LEARN_REFRESHED = 3;
export const LEARN_FULL = -1;

interface VniState {
  remotes: string[];
  learned: Map<number, LearnedEntry>;
}

const macKey = (b: Uint8Array, off: number): number => macHi(b, off) * 0x100000000 + (macLo(b, off) >>> 0);

export class VtepTable {
  private readonly vnis = new Map<number, VniState>();

  constructor(readonly ageingMs: number, readonly maxLearned = 4096) {}

  addVni(vni: number, remotes: readonly string[]): void {
    this.vnis.set(vni, { remotes: [...remotes], learned: new Map() });
  }

  hasVni(vni: number): boolean {
    return this.vnis.has(vni);
  }

  /** Static remote VTEPs of a VNI: where floods go (empty for an unknown VNI). */
  floodList(vni: number): readonly string[] {
    return this.vnis.get(vni)?.remotes ?? [];
  }

  /**
   * Learn the inner source MAC at b[off..off+6] as reachable through `addr`. Multicast and
   * broadcast source MACs are never learned (they are not a station). Returns a LEARN_* code.
   */
  learn(vni: number, b: Uint8Array, off: number, addr: string, now: number): number {
    if ((b[off]! & 1) !== 0) return LEARN_NONE;
    const v = this.vnis.get(vni);
    if (v === undefined) return LEARN_NONE;
    const key = macKey(b, off);
    const e = v.learned.get(key);
    if (e !== undefined) {
      e.seen = now;
      if (e.addr === addr) return LEARN_REFRESHED;
      e.addr = addr;
      return LEARN_MOVED;
    }
    if (v.learned.size >= this.maxLearned) return LEARN_FULL;
    v.learned.set(key, { addr, seen: now });
    return LEARN_NEW;
  }

  /** The VTEP that owns the unicast MAC at b[off..], or null (flood). Expired entries count as absent. */
  lookup(vni: number, b: Uint8Array, off: number, now: number): string | null {
    const v = this.vnis.get(vni);
    if (v === undefined) return null;
    const e = v.learned.get(macKey(b, off));
    if (e === undefined || now - e.seen > this.ageingMs) return null;
    return e.addr;
  }

  /** Drop entries older than ageingMs; returns how many. */
  age(now: number): number {
    let n = 0;
    for (const v of this.vnis.values()) {
      for (const [k, e] of v.learned) {
        if (now - e.seen > this.ageingMs) {
          v.learned.delete(k);
          n++;
        }
      }
    }
    return n;
  }

  /** A snapshot for the control plane (allocates; not for the data path). */
  entries(now: number): { vni: number; mac: string; vtep: string; ageMs: number }[] {
    const out: { vni: number; mac: string; vtep: string; ageMs: number }[] = [];
    for (const [vni, v] of this.vnis) {
      for (const [k, e] of v.learned) {
        const hex = k.toString(16).padStart(12, '0');
        out.push({ vni, mac: hex.match(/../g)!.join(':'), vtep: e.addr, ageMs: now - e.seen });
      }
    }
    return out;
  }
}
