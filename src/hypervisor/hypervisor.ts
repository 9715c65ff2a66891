/**
 * The hypervisor: the control plane on the main thread. It creates devices and guests, grants a
 * guest the memory of its VIFs (hot-plug) and takes it back (unplug), and reclaims the VIFs of a
 * guest that exits. It is never on the data path.
 */
import { Device, type DeviceOptions, type Vif, type VifOptions } from './device.js';
import { Guest, type GuestOptions } from './guest.js';
import { SvnicError } from './errors.js';

export class Hypervisor {
  readonly devices: Device[] = [];
  readonly guests = new Map<string, Guest>();
  private guestSeq = 0;

  async createDevice(opts: DeviceOptions = {}): Promise<Device> {
    const d = await Device.create(opts);
    this.devices.push(d);
    d.on('vif-destroyed', (v: Vif) => {
      if (v.guestId) this.guests.get(v.guestId)?.vifs.delete(v);
    });
    return d;
  }

  /** Start a guest and wait until its module is loaded. */
  async startGuest(opts: GuestOptions): Promise<Guest> {
    const id = opts.name ?? `guest${this.guestSeq++}`;
    if (this.guests.has(id)) throw new SvnicError('BAD_OPTION', `a guest named "${id}" already exists`);
    const g = new Guest(id, opts);
    this.guests.set(id, g);
    g.on('exit', () => void this.reclaim(g));
    await g.ready();
    return g;
  }

  guest(id: string): Guest {
    const g = this.guests.get(id);
    if (!g) throw new SvnicError('NO_SUCH_GUEST', `no guest "${id}"; list guests with hypervisor.guests`);
    return g;
  }

  /** Hot-plug: grant `vif`'s memory to `guest`. Resolves when the guest's driver has it. */
  async plug(guest: Guest, vif: Vif): Promise<void> {
    if (vif.state === 'destroyed') throw new SvnicError('NO_SUCH_VIF', `VIF ${vif.id} was destroyed`);
    if (vif.guestId !== null) throw new SvnicError('VIF_ALREADY_GRANTED', `VIF ${vif.id} is granted to guest ${vif.guestId}; unplug it first`);
    if (!guest.running) throw new SvnicError('GUEST_EXITED', `guest ${guest.id} has exited; start a new guest`);
    vif.guestId = guest.id;
    guest.vifs.add(vif);
    try {
      await guest.post({ type: 'grant', grant: vif.grant() }, `granted:${vif.id}`);
    } catch (e) {
      guest.vifs.delete(vif);
      vif.guestId = null;
      throw e;
    }
    // The guest may have exited while the grant was in flight: reclaim as its exit handler would.
    if (!guest.running) await vif.device.removeVif(vif);
  }

  /**
   * Hot-unplug: the device stops using the VIF first (frames the guest queued but the device never
   * took are counted as tx_unplugged), then the guest's driver is told. The VIF is destroyed.
   */
  async unplug(vif: Vif): Promise<void> {
    const g = vif.guestId !== null ? this.guests.get(vif.guestId) : undefined;
    await vif.device.removeVif(vif);
    if (g) {
      g.vifs.delete(vif);
      if (g.running) await g.post({ type: 'revoke', vifId: vif.id }, `revoked:${vif.id}`);
    }
    vif.countLateFrames();
  }

  /** A guest exited (or was killed): destroy its VIFs so nothing else notices. */
  private async reclaim(g: Guest): Promise<void> {
    for (const v of [...g.vifs]) {
      await v.device.removeVif(v).catch(() => {});
      v.countLateFrames(); // the guest is gone: its rings can no longer change
    }
    g.vifs.clear();
  }

  /** Create a VIF on `device` and plug it into `guest`. */
  async createVifFor(guest: Guest, device: Device, opts: VifOptions = {}): Promise<Vif> {
    const v = await device.createVif(opts);
    await this.plug(guest, v);
    return v;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.guests.values()].map((g) => g.terminate()));
    await Promise.all(this.devices.map((d) => d.stop()));
  }
}
