/**
 * VM guests in the daemon (issue 5, `vms:` in the config): the guest kind `vm`. A VM guest has one
 * VIF, served over a vhost-user socket (src/vhost-user/port.ts) to a VM's unmodified virtio-net
 * driver; with `boot` the daemon also runs the VM (QEMU/TCG on the cached image, src/vm/qemu.ts),
 * otherwise the user starts QEMU against the socket (`svnic vm args`).
 *
 * To the daemon's runtime a VM guest looks like an isolate guest (GuestHandle): it is `running`
 * until it is stopped or, when booted, until QEMU exits; then, as with an isolate whose worker
 * exited, its VIF is reclaimed (the socket closed, the VIF removed) and the next change starts it
 * again. A VM the user runs may disconnect and reconnect: the VIF stays and waits on its socket.
 *
 * The same pieces as `svnic run` (config/apply-vms.ts): VhostUserPort, one KickRelay for every VM
 * VIF of the process, Vm and ensureImage. ensureImage is synchronous: the first boot of a VM on a
 * machine without the cached image blocks the daemon while it builds (build it first with
 * `svnic vm image`).
 */
import { EventEmitter } from 'node:events';
import type { Vif } from '../hypervisor/device.js';
import type { GuestConfig } from '../config/schema.js';
import { KickRelay } from '../vhost-user/kick-relay.js';
import { VhostUserPort } from '../vhost-user/port.js';
import { ensureImage } from '../vm/image.js';
import { Vm, type VmResult } from '../vm/qemu.js';

/** What the daemon's runtime and views use of a guest (hypervisor/guest.ts Guest has all of it). */
export interface GuestHandle {
  readonly id: string;
  readonly running: boolean;
  /** What the guest ended with (a booted VM: its exit code and console output). */
  readonly result: unknown;
  readonly error: string | null;
  terminate(): Promise<unknown>;
  send(msg: unknown): void;
  on(event: 'exit', fn: (code: number) => void): unknown;
}

/** One KickRelay thread for all VM VIFs of the daemon, started with the first, stopped after the last. */
let relay: KickRelay | null = null;
let relayUsers = 0;
const takeRelay = (): KickRelay => {
  relayUsers++;
  return (relay ??= new KickRelay());
};
const giveRelay = async (): Promise<void> => {
  if (--relayUsers > 0 || !relay) return;
  const r = relay;
  relay = null;
  await r.stop();
};

export class VmGuest extends EventEmitter implements GuestHandle {
  private port: VhostUserPort | null = null;
  private vm: Vm | null = null;
  private vmResult: VmResult | null = null;
  private stopped = false;
  private vif: Vif | null = null;

  constructor(readonly id: string, private readonly cfg: GuestConfig, private readonly resolvePath: (p: string) => string) {
    super();
  }

  /** The vhost-user socket's path (relative paths: against the config file's directory). */
  get socket(): string {
    return this.resolvePath(this.cfg.vm!.socket);
  }

  get running(): boolean {
    return !this.stopped && this.vmResult === null;
  }

  get connected(): boolean {
    return this.port?.connected ?? false;
  }

  get result(): unknown {
    return this.vmResult ? { rc: this.vmResult.rc, output: this.vmResult.output.trim() } : undefined;
  }

  get error(): string | null {
    return this.vmResult && this.vmResult.rc !== 0 ? `QEMU exited with ${this.vmResult.rc}` : null;
  }

  /** VM guests take no messages (the start message of isolates is ignored). */
  send(): void {}

  /** Serve `vif` on the VM's socket, and boot the VM when configured. */
  async plug(vif: Vif): Promise<void> {
    const m = this.cfg.vm!;
    if (this.port) throw new Error(`VM guest ${this.id} has its VIF already (a VM has exactly one)`);
    const r = takeRelay();
    try {
      this.port = new VhostUserPort(vif.device, vif, r, { socket: this.socket, mode: m.mode, offloads: m.offloads });
    } catch (e) {
      await giveRelay();
      throw e;
    }
    this.vif = vif;
    if (m.boot) {
      const vm = new Vm({
        name: this.id, image: ensureImage(), mac: vif.mac, ip: m.boot.ip, cmd: m.boot.cmd, memMb: m.boot.memMb,
        net: { kind: 'vhost-user', socket: this.socket, server: m.mode === 'client' },
      });
      this.vm = vm;
      // QEMU exited: reclaim the VIF first, then show the guest as ended (so nobody sees an
      // ended guest that still holds its VIF).
      void vm.done.then(async (res) => {
        if (this.stopped) return;
        await this.release().catch(() => {});
        this.vmResult = res;
        this.emit('exit', res.rc);
      }, () => {});
    }
  }

  /** Stop serving the VIF and remove it from its device (unplug, or the VM is gone). */
  async unplug(vif: Vif): Promise<void> {
    if (this.vif === vif) await this.release();
    else if (vif.state !== 'destroyed') await vif.device.removeVif(vif);
  }

  private async release(): Promise<void> {
    const port = this.port;
    const vif = this.vif;
    this.port = null;
    this.vif = null;
    if (port) {
      await port.close();
      await giveRelay();
    }
    if (vif && vif.state !== 'destroyed') await vif.device.removeVif(vif);
  }

  async terminate(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.vm) {
      this.vm.kill();
      await this.vm.done.catch(() => {});
    }
    await this.release();
    this.emit('exit', 0);
  }
}
