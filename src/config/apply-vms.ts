/**
 * VM guests of a `svnic run` config (vms: in the file, issue 5): for each, create its VIF on its
 * device, expose it as a vhost-user socket, and with `boot` start QEMU/TCG on the cached image.
 * One kick relay thread serves every VM VIF. A VM whose QEMU exits leaves its VIF waiting for the
 * next connection on the same socket.
 */
import type { Device, Vif } from '../hypervisor/device.js';
import { KickRelay } from '../vhost-user/kick-relay.js';
import { VhostUserPort } from '../vhost-user/port.js';
import { ensureImage } from '../vm/image.js';
import { Vm, type VmResult } from '../vm/qemu.js';
import type { GuestConfig, VifConfig } from './schema.js';

interface VmGuest { port: VhostUserPort; vm: Vm | null; result: VmResult | null; exited: Promise<void> }

export class VmGuests {
  private relay: KickRelay | null = null;
  private readonly byName = new Map<string, VmGuest>();

  /** Create the VM's VIF and socket (and boot it when configured). Returns the VIF. */
  async add(gc: GuestConfig, device: Device, vc: VifConfig): Promise<Vif> {
    const m = gc.vm!;
    const v = await device.createVif({
      name: vc.name, mac: vc.mac, mtu: vc.mtu, queueSize: vc.queueSize, segment: vc.segment, linkUp: vc.linkUp,
      promiscuous: vc.promiscuous, multicast: vc.multicast, coalesce: vc.coalesce, engine: vc.engine,
    });
    this.relay ??= new KickRelay();
    const port = new VhostUserPort(device, v, this.relay, { socket: m.socket, mode: m.mode, offloads: m.offloads });
    const g: VmGuest = { port, vm: null, result: null, exited: new Promise<void>(() => {}) };
    if (m.boot) {
      const vm = new Vm({
        name: gc.name, image: ensureImage(), mac: v.mac, ip: m.boot.ip, cmd: m.boot.cmd, memMb: m.boot.memMb,
        net: { kind: 'vhost-user', socket: m.socket, server: m.mode === 'client' },
      });
      g.vm = vm;
      g.exited = vm.done.then((r) => void (g.result = r), () => {});
    }
    this.byName.set(gc.name, g);
    return v;
  }

  /** State for the run's snapshot: running while QEMU is connected (or, if booted, alive). */
  snapshot(name: string): { state: 'starting' | 'running' | 'done' | 'failed' | 'exited'; result?: unknown } {
    const g = this.byName.get(name);
    if (!g) return { state: 'starting' };
    if (g.result) {
      const r = g.result;
      return { state: r.rc === 0 ? 'done' : r.rc > 0 ? 'failed' : 'exited', result: { rc: r.rc, output: r.output.trim() } };
    }
    return { state: g.port.connected || g.vm ? 'running' : 'starting' };
  }

  /** Resolves when a booted VM's QEMU has exited (never for a VM started by the user). */
  exited(name: string): Promise<void> {
    return this.byName.get(name)?.exited ?? new Promise<void>(() => {});
  }

  async stop(): Promise<void> {
    for (const g of this.byName.values()) g.vm?.kill();
    await Promise.all([...this.byName.values()].map((g) => g.vm?.done.catch(() => {})));
    for (const g of this.byName.values()) await g.port.close();
    await this.relay?.stop();
    this.relay = null;
  }
}
