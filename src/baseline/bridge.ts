/**
 * The driver domain's software bridge (Xen's dom0 Linux bridge): a transparent learning bridge
 * (IEEE 802.1D) between the guests' netifs and the driver domain's NIC. It learns source MACs
 * with ageing (fdb.ts), forwards known unicast to one port, floods broadcast, multicast and
 * unknown unicast to every port but the ingress one, and never sends a frame back out of the port
 * it came in on. It switches on driver-domain memory only: a guest frame is already netback's
 * private copy in a NIC transmit buffer, a NIC frame is in the NIC's receive buffer.
 *
 * Ports: NIC_PORT (0) is the NIC; netif slot s is port s + 1. The guests' MACs are static entries
 * (the control plane knows them); the NIC side is learnt.
 *
 * Accounting (layout/driver-domain.ts): every frame that enters (netif tx_frames, NIC
 * uplink_rx_frames) ends as deliveries or counted drops at netifs, frames to the NIC
 * (uplink_tx_frames) or a driver-domain drop; flood_copies adds the copies beyond the first and a
 * frame with no outcome counts no_receiver, exactly like the device's switch.
 */
import { EC } from '../layout/counters.js';
import { BC } from '../layout/driver-domain.js';
import { MIN_FRAME } from '../device/virtio-net-device.js';
import type { EngineVif } from '../device/engine-vif.js';
import { Fdb, NO_PORT } from './fdb.js';
import type { Netback } from './netback.js';
import type { DomNic } from './nic.js';

export const NIC_PORT = 0;
export const portOf = (slot: number): number => slot + 1;

export class Bridge {
  readonly fdb: Fdb;
  private readonly nb: Netback;
  private readonly nic: DomNic;
  private readonly c: Float64Array;
  private readonly ec: number;
  private readonly bc: number;
  /** Live netifs, for flooding (rebuilt on add/remove). */
  private ports: EngineVif[] = [];

  constructor(nb: Netback, nic: DomNic, fdb: Fdb, counters: Float64Array, ddRow: number, bridgeRow: number) {
    this.nb = nb;
    this.nic = nic;
    this.fdb = fdb;
    this.c = counters;
    this.ec = ddRow;
    this.bc = bridgeRow;
  }

  rebuildPorts(): void {
    this.ports = this.nb.netifs.filter((v): v is EngineVif => v !== undefined);
  }

  private outcome(n: number): void {
    if (n === 0) this.c[this.ec + EC.no_receiver] += 1;
    else if (n > 1) this.c[this.ec + EC.flood_copies] += n - 1;
  }

  /**
   * A guest frame of `len` bytes, netback's copy in NIC transmit buffer `slot` (already checked
   * for spoofing). Commits the buffer to the NIC if the frame goes out there.
   */
  fromNetif(src: EngineVif, slot: number, len: number, now: number): void {
    const nic = this.nic;
    const b = nic.bytes;
    const off = nic.frameOffset(slot);
    this.fdb.learn(b, off + 6, portOf(src.slot), now); // a static entry: refreshes nothing
    if ((b[off]! & 1) === 0) {
      const port = this.fdb.lookup(b, off, now);
      if (port === NIC_PORT) return this.outcome(this.toNic(len));
      if (port !== NO_PORT) {
        const v = this.nb.netifs[port - 1];
        if (v === undefined) this.c[this.ec + EC.vif_gone] += 1;
        else if (v !== src) this.nb.deliver(v, b, nic.words, off, len);
        else return this.outcome(0); // to its own port: 802.1D never sends a frame back
        return this.outcome(1);
      }
      this.c[this.bc + BC.flood_unknown] += 1;
    }
    this.outcome(this.floodNetifs(src.slot, b, nic.words, off, len) + this.toNic(len));
  }

  /** A frame the NIC received, in its receive buffer at bytes[off..off+len]. */
  fromNic(b: Uint8Array, b32: Int32Array, off: number, len: number, now: number): void {
    const c = this.c;
    if (len < MIN_FRAME) {
      c[this.ec + EC.uplink_rx_runt] += 1;
      return;
    }
    c[this.ec + EC.uplink_rx_frames] += 1;
    c[this.ec + EC.uplink_rx_bytes] += len;
    if ((b[off + 6]! & 1) !== 0) {
      // 802.1D 7.8: a group address is never a source. Dropped; the frame had entered the bridge.
      c[this.bc + BC.bad_source] += 1;
      return this.outcome(0);
    }
    this.fdb.learn(b, off + 6, NIC_PORT, now);
    if ((b[off]! & 1) === 0) {
      const port = this.fdb.lookup(b, off, now);
      if (port === NIC_PORT) return this.outcome(0); // belongs on the wire side: filtered
      if (port !== NO_PORT) {
        const v = this.nb.netifs[port - 1];
        if (v === undefined) c[this.ec + EC.vif_gone] += 1;
        else this.nb.deliver(v, b, b32, off, len);
        return this.outcome(1);
      }
      c[this.bc + BC.flood_unknown] += 1;
    }
    this.outcome(this.floodNetifs(-1, b, b32, off, len));
  }

  private floodNetifs(except: number, b: Uint8Array, b32: Int32Array, off: number, len: number): number {
    const p = this.ports;
    let n = 0;
    for (let i = 0; i < p.length; i++) {
      const v = p[i]!;
      if (v.slot !== except) {
        this.nb.deliver(v, b, b32, off, len);
        n++;
      }
    }
    return n;
  }

  private toNic(len: number): number {
    this.nic.commit(len);
    this.c[this.ec + EC.uplink_tx_frames] += 1;
    this.c[this.ec + EC.uplink_tx_bytes] += len;
    return 1;
  }

  /** Copy the FDB's own tallies into the shared bridge row (off the per-frame path). */
  publishFdbCounters(): void {
    const f = this.fdb;
    const c = this.c;
    c[this.bc + BC.fdb_learned] = f.learned;
    c[this.bc + BC.fdb_moved] = f.moved;
    c[this.bc + BC.fdb_aged] = f.aged;
    c[this.bc + BC.fdb_full] = f.full;
    c[this.bc + BC.fdb_static_conflict] = f.staticConflicts;
  }
}
