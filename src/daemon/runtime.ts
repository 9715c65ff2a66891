/**
 * What the daemon runs: devices, their uplinks, guests and VIFs, each with the config it was started
 * from. It executes plan steps (plan.ts) with the Hypervisor API and answers "what runs now" for the
 * next plan. It never decides what to do; the controller does.
 */
import { resolve } from 'node:path';
import { Hypervisor } from '../hypervisor/hypervisor.js';
import type { Device, Vif, VifSettings } from '../hypervisor/device.js';
import type { Guest } from '../hypervisor/guest.js';
import { SvnicError } from '../hypervisor/errors.js';
import type { Uplink } from '../uplink/uplink.js';
import type { DeviceConfig, GuestConfig, VifConfig } from '../config/schema.js';
import { GUEST_KINDS, UPLINK_KINDS, VIF_FIELDS, guestKindOf, vifCreateOptions } from './registry.js';
import type { RunningView, Step } from './plan.js';
import type { GuestHandle } from './vm-guest.js';

export interface RunningVif {
  cfg: VifConfig;
  guest: string;
  vif: Vif;
}

export class Runtime {
  readonly hv = new Hypervisor();
  readonly devices = new Map<string, { cfg: DeviceConfig; device: Device }>();
  readonly uplinks = new Map<string, Uplink>();
  /** Guests started, including ones whose worker has since exited (state shown by the API). */
  readonly guests = new Map<string, { cfg: GuestConfig; guest: GuestHandle; stoppedByUs: boolean }>();
  readonly vifs = new Map<string, RunningVif>();
  /** The message every guest gets once its VIFs are plugged (as `svnic run` does). */
  startMessage: unknown = 'go';
  /** Where device events (a VIF needing a reset, a guest exiting) are logged. */
  log: (msg: string) => void = () => {};
  /** Where relative file paths of the config (capture files) are resolved: the config file's directory. */
  baseDir = process.cwd();
  readonly resolvePath = (p: string): string => resolve(this.baseDir, p);

  view(): RunningView {
    const guests = new Map<string, GuestConfig>();
    for (const [n, g] of this.guests) if (g.guest.running) guests.set(n, g.cfg);
    const vifs = new Map<string, RunningVif>();
    for (const [n, v] of this.vifs) if (v.vif.state !== 'destroyed') vifs.set(n, v);
    return { devices: new Map([...this.devices].map(([n, d]) => [n, d.cfg])), guests, vifs };
  }

  /** Execute one plan step. */
  async run(s: Step): Promise<void> {
    switch (s.op) {
      case 'remove-vif': {
        const r = this.vifs.get(s.vif);
        if (!r) return;
        if (r.vif.state !== 'destroyed') {
          const g = this.guests.get(r.guest);
          const unplug = g ? GUEST_KINDS[guestKindOf(g.cfg)]?.unplug : undefined;
          if (g && unplug) await unplug(g.guest, r.vif);
          else if (r.vif.guestId !== null) await this.hv.unplug(r.vif);
          else await r.vif.device.removeVif(r.vif);
        }
        this.vifs.delete(s.vif);
        return;
      }
      case 'stop-guest': {
        const g = this.guests.get(s.guest);
        if (!g) return;
        g.stoppedByUs = true;
        await g.guest.terminate();
        this.guests.delete(s.guest);
        this.hv.guests.delete(s.guest);
        for (const [n, v] of this.vifs) if (v.guest === s.guest) this.vifs.delete(n);
        return;
      }
      case 'remove-device': {
        const d = this.devices.get(s.device);
        if (!d) return;
        await this.uplinks.get(s.device)?.stop().catch(() => {});
        this.uplinks.delete(s.device);
        await d.device.stop();
        const i = this.hv.devices.indexOf(d.device);
        if (i >= 0) this.hv.devices.splice(i, 1);
        this.devices.delete(s.device);
        return;
      }
      case 'add-device': {
        const c = s.device;
        const device = await this.hv.createDevice({
          name: c.name, engines: c.engines, maxVifs: c.maxVifs, interruptMode: c.interruptMode, spinUs: c.spinUs,
          sweepMs: c.sweepMs, batch: c.batch, ringSlots: c.ringSlots, routerSpinUs: c.routerSpinUs,
          qos: c.qos,
        });
        device.on('needs-reset', (e: { vif: string; reason: string }) => this.log(`VIF ${e.vif} needs a reset by its driver: ${e.reason}`));
        this.devices.set(c.name, { cfg: c, device });
        return;
      }
      case 'attach-uplink': {
        const d = this.devices.get(s.device)!;
        const kind = UPLINK_KINDS[d.cfg.uplink.kind];
        if (!kind) throw new SvnicError('BAD_OPTION', `the daemon does not know uplink kind "${d.cfg.uplink.kind}" (registry.ts UPLINK_KINDS)`);
        const devices = new Map([...this.devices].map(([n, x]) => [n, x.device]));
        for (const [n, u] of await kind.attach(d.device, d.cfg, { devices, attached: this.uplinks, resolvePath: this.resolvePath })) this.uplinks.set(n, u);
        return;
      }
      case 'change-uplink': {
        const d = this.devices.get(s.device)!;
        const kind = UPLINK_KINDS[d.cfg.uplink.kind];
        const up = this.uplinks.get(s.device);
        if (!kind?.change || !up) throw new SvnicError('BAD_OPTION', `the uplink of device ${s.device} cannot change while it runs`);
        const devices = new Map([...this.devices].map(([n, x]) => [n, x.device]));
        await kind.change(up, s.to.uplink, { devices, attached: this.uplinks, resolvePath: this.resolvePath });
        d.cfg = s.to;
        return;
      }
      case 'start-guest': {
        const kind = GUEST_KINDS[guestKindOf(s.guest)];
        if (!kind) throw new SvnicError('BAD_OPTION', `the daemon does not know guest kind "${guestKindOf(s.guest)}" (registry.ts GUEST_KINDS)`);
        const old = this.hv.guests.get(s.guest.name);
        if (old && !old.running) this.hv.guests.delete(s.guest.name); // an exited guest of the same name
        const guest = await kind.start(this.hv, s.guest, this);
        guest.on('exit', (code: number) => {
          if (this.guests.get(s.guest.name)?.guest === guest && !this.guests.get(s.guest.name)!.stoppedByUs) {
            this.log(`guest ${guest.id} exited (code ${code})${guest.error ? `: ${guest.error.split('\n')[0]}` : ''}; its VIFs were reclaimed; a reload starts it again`);
          }
        });
        this.guests.set(s.guest.name, { cfg: s.guest, guest, stoppedByUs: false });
        return;
      }
      case 'change-vif': {
        const r = this.vifs.get(s.vif)!;
        const settings: Record<string, unknown> = {};
        for (const k of s.fields) {
          const f = VIF_FIELDS.find((x) => x.key === k)!;
          if (f.apply) await f.apply(r.vif.device, r.vif, s.to, this);
          else settings[k] = (s.to as unknown as Record<string, unknown>)[k];
        }
        if (Object.keys(settings).length) await r.vif.device.setVif(r.vif.id, settings as VifSettings);
        r.cfg = s.to;
        return;
      }
      case 'add-vif': {
        const g = this.guests.get(s.guest);
        const d = this.devices.get(s.vif.device);
        if (!g || !d) throw new SvnicError('NO_SUCH_GUEST', `VIF ${s.vif.name}: guest ${s.guest} or device ${s.vif.device} is not running`);
        const vif = await d.device.createVif(vifCreateOptions(s.vif));
        this.vifs.set(s.vif.name, { cfg: s.vif, guest: s.guest, vif });
        for (const f of VIF_FIELDS) {
          if (f.onCreate && (s.vif as unknown as Record<string, unknown>)[f.key] !== undefined) await f.onCreate(vif, s.vif, this);
        }
        const plug = GUEST_KINDS[guestKindOf(g.cfg)]?.plug;
        if (plug) await plug(g.guest, vif);
        else await this.hv.plug(g.guest as Guest, vif);
        return;
      }
      case 'start-message': {
        if (this.startMessage !== undefined) this.guests.get(s.guest)?.guest.send(this.startMessage);
        return;
      }
    }
  }

  async stop(): Promise<void> {
    for (const g of this.guests.values()) g.stoppedByUs = true;
    await Promise.all([...this.hv.guests.values()].map((g) => g.terminate()));
    // guests that are not worker threads (VMs): their sockets closed, QEMU stopped
    await Promise.all([...this.guests.values()].filter((g) => this.hv.guests.get(g.guest.id) !== g.guest).map((g) => g.guest.terminate().catch(() => {})));
    await Promise.all([...this.uplinks.values()].map((u) => u.stop().catch(() => {})));
    await this.hv.stop();
  }
}
