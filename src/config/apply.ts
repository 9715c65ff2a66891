/**
 * Start what a validated config describes, with the public Hypervisor API, in this order:
 * devices, uplinks (echo, wire), guests (in parallel; each resolves once its module is loaded),
 * VIFs (created and hot-plugged into their guest, in file order), and finally the start message
 * (default: the string "go") to every guest, which a guest reads with `ctx.message()`.
 *
 * If any step fails, everything already started is stopped and the error is rethrown with the
 * config path of what failed in front of its message (`guests.1.vifs.0: ...`), keeping its code.
 */
import { Hypervisor } from '../hypervisor/hypervisor.js';
import type { Device, Vif } from '../hypervisor/device.js';
import type { Guest } from '../hypervisor/guest.js';
import { SvnicError } from '../hypervisor/errors.js';
import { EchoUplink } from '../uplink/echo.js';
import { Wire } from '../uplink/wire.js';
import { attachNetUplink } from '../uplink/net-uplinks.js';
import { captureVif } from '../capture/vif-capture.js';
import { NullUplink, type Uplink } from '../uplink/uplink.js';
import { VIF_DROP_COUNTERS, ENGINE_DROP_COUNTERS, type VifCounter, type EngineCounter } from '../layout/counters.js';
import type { Config, UplinkConfig, VifConfig } from './schema.js';
import { VmGuests } from './apply-vms.js';

export interface ApplyOptions {
  /** Use this hypervisor instead of a new one (stop() then stops all of it). */
  hypervisor?: Hypervisor;
  /** The message sent to every guest once all VIFs are plugged; `undefined`: none. Default "go". */
  startMessage?: unknown;
}

export interface VifSnapshot {
  name: string;
  guest: string;
  device: string;
  mac: string;
  segment: number;
  /** 'destroyed' once its guest has exited (its VIFs are reclaimed) or the run has stopped. */
  state: Vif['state'];
  counters: Record<VifCounter, number>;
  /** Sum of the drop counters, and the ones that are not zero. */
  drops: number;
  dropReasons: Partial<Record<VifCounter, number>>;
}

export interface DeviceSnapshot {
  name: string;
  uplink: string;
  /** Sum over the device's engines. */
  counters: Record<EngineCounter, number>;
  drops: number;
  dropReasons: Partial<Record<EngineCounter, number>>;
  uplinkCounters: Record<string, number>;
  /**
   * The switch's conservation law (Device.unaccounted): frames in minus outcomes. Zero on a quiet
   * device; frames still in flight (in a ring, or on their way to a guest) when read are counted.
   */
  unaccounted: number;
}

export type GuestState = 'starting' | 'running' | 'done' | 'failed' | 'exited' | 'stopped';

export interface GuestSnapshot {
  name: string;
  /** done: main returned; failed: main threw; exited: the worker ended otherwise; stopped: by stop(). */
  state: GuestState;
  result?: unknown;
  error?: string;
  reports: number;
}

export interface RunSnapshot {
  devices: DeviceSnapshot[];
  guests: GuestSnapshot[];
  vifs: VifSnapshot[];
}

export interface Running {
  readonly config: Config;
  readonly hypervisor: Hypervisor;
  readonly devices: ReadonlyMap<string, Device>;
  readonly guests: ReadonlyMap<string, Guest>;
  readonly vifs: ReadonlyMap<string, Vif>;
  /** Uplink handles by device name (a wire appears under both of its devices). */
  readonly uplinks: ReadonlyMap<string, Uplink>;
  /** Resolves when every guest's worker has exited (never, if the config has no guests). */
  readonly guestsExited: Promise<void>;
  counters(): RunSnapshot;
  /** Stop guests, uplinks and devices (idempotent); resolves with the final counters. */
  stop(): Promise<RunSnapshot>;
}

const at = (path: string, e: unknown): Error =>
  e instanceof SvnicError ? new SvnicError(e.code, `${path}: ${e.message}`) : new Error(`${path}: ${(e as Error)?.message ?? String(e)}`);

/**
 * Attach device `d`'s uplink as its config entry says; the one place that turns an uplink config
 * into a running uplink (`svnic run` above, and the daemon through src/daemon/registry.ts).
 * Returns the uplink of each device it now serves (a wire serves both of its ends), or [] when this
 * is the far end of a wire its peer already connected.
 */
export async function attachUplink(d: Device, uplink: UplinkConfig, devices: ReadonlyMap<string, Device>): Promise<[string, Uplink][]> {
  switch (uplink.kind) {
    case 'echo':
      return [[d.name, await EchoUplink.attach(d)]];
    case 'vxlan':
    case 'tap':
      return [[d.name, await attachNetUplink(d, uplink)]]; // issue 4
    case 'wire': {
      if (d.uplinkKind === 'wire') return []; // the other end already connected this wire
      const peer = devices.get(uplink.peer);
      if (!peer) throw new SvnicError('BAD_OPTION', `wire: no running device "${uplink.peer}" to connect to`);
      const w = await Wire.connect(d, peer);
      return [[d.name, w], [uplink.peer, w]];
    }
    case 'null':
      return [[d.name, new NullUplink(d)]];
  }
}

export async function applyConfig(config: Config, opts: ApplyOptions = {}): Promise<Running> {
  const hv = opts.hypervisor ?? new Hypervisor();
  const devices = new Map<string, Device>();
  const uplinks = new Map<string, Uplink>();
  const guests = new Map<string, Guest>();
  const vifs = new Map<string, Vif>();
  const vifConfigs = new Map<string, VifConfig>();
  const stoppedByUs = new Set<string>();
  let stopping: Promise<RunSnapshot> | null = null;
  const vmGuests = new VmGuests(); // `vms:` (issue 5)

  const snapshot = (): RunSnapshot => ({
    devices: config.devices.filter((d) => devices.has(d.name)).map((dc): DeviceSnapshot => {
      const d = devices.get(dc.name)!;
      const counters = d.deviceCounters();
      const dropReasons: Partial<Record<EngineCounter, number>> = {};
      for (const k of ENGINE_DROP_COUNTERS) if (counters[k] !== 0) dropReasons[k] = counters[k];
      return {
        name: d.name, uplink: d.uplinkKind, counters, drops: ENGINE_DROP_COUNTERS.reduce((s, k) => s + counters[k], 0),
        dropReasons, uplinkCounters: uplinks.get(d.name)?.counters() ?? {}, unaccounted: d.unaccounted(),
      };
    }),
    guests: config.guests.map((gc): GuestSnapshot => {
      if (gc.vm) return { name: gc.name, reports: 0, ...vmGuests.snapshot(gc.name) };
      const g = guests.get(gc.name);
      if (!g) return { name: gc.name, state: 'starting', reports: 0 };
      const state: GuestState = g.result !== undefined ? 'done' : g.error !== null ? 'failed'
        : g.running ? 'running' : stoppedByUs.has(g.id) ? 'stopped' : 'exited';
      return {
        name: g.id, state, reports: g.reports.length,
        ...(g.result !== undefined ? { result: g.result } : {}),
        ...(g.error !== null ? { error: g.error } : {}),
      };
    }),
    vifs: [...vifs.values()].map((v): VifSnapshot => {
      const vc = vifConfigs.get(v.id)!;
      const counters = v.counters();
      const dropReasons: Partial<Record<VifCounter, number>> = {};
      for (const k of VIF_DROP_COUNTERS) if (counters[k] !== 0) dropReasons[k] = counters[k];
      return {
        name: v.id, guest: v.guestId ?? findGuestOf(vc), device: v.device.name, mac: v.mac, segment: v.segment, state: v.state,
        counters, drops: VIF_DROP_COUNTERS.reduce((s, k) => s + counters[k], 0), dropReasons,
      };
    }),
  });
  const findGuestOf = (vc: VifConfig): string => config.guests.find((g) => g.vifs.includes(vc))?.name ?? '';

  const stop = (): Promise<RunSnapshot> => {
    stopping ??= (async () => {
      for (const g of guests.values()) if (g.running) stoppedByUs.add(g.id);
      // Guests first (their VIFs are reclaimed), then the uplinks' own threads, then the engines.
      await Promise.all([...hv.guests.values()].map((g) => g.terminate()));
      await vmGuests.stop().catch(() => {});
      await Promise.all([...uplinks.values()].map((u) => u.stop().catch(() => {})));
      await hv.stop();
      return snapshot();
    })();
    return stopping;
  };

  try {
    for (const dc of config.devices) {
      try {
        const d = await hv.createDevice({
          name: dc.name, engines: dc.engines, maxVifs: dc.maxVifs, interruptMode: dc.interruptMode, spinUs: dc.spinUs,
          sweepMs: dc.sweepMs, batch: dc.batch, ringSlots: dc.ringSlots, routerSpinUs: dc.routerSpinUs,
          qos: dc.qos,
        });
        devices.set(dc.name, d);
      } catch (e) {
        throw at(dc.path, e);
      }
    }
    for (const dc of config.devices) {
      try {
        for (const [n, u] of await attachUplink(devices.get(dc.name)!, dc.uplink, devices)) uplinks.set(n, u);
      } catch (e) {
        throw at(`${dc.path}.uplink`, e);
      }
    }
    // Guests start in parallel (each loads its module in its own worker).
    const started = await Promise.allSettled(config.guests.filter((gc) => !gc.vm).map(async (gc) => {
      try {
        await hv.startGuest({ name: gc.name, module: gc.moduleUrl, args: gc.args });
      } catch (e) {
        throw at(gc.path, e);
      }
    }));
    for (const gc of config.guests) { // in file order, whichever was ready first
      const g = hv.guests.get(gc.name);
      if (g) guests.set(gc.name, g);
    }
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    for (const gc of config.guests) {
      if (gc.vm) {
        const vc = gc.vifs[0]!;
        try {
          vifs.set(vc.name, await vmGuests.add(gc, devices.get(vc.device)!, vc));
          vifConfigs.set(vc.name, vc);
        } catch (e) {
          throw at(gc.path, e);
        }
        continue;
      }
      const g = guests.get(gc.name)!;
      for (const vc of gc.vifs) {
        try {
          const v = await hv.createVifFor(g, devices.get(vc.device)!, {
            name: vc.name, mac: vc.mac, mtu: vc.mtu, queueSize: vc.queueSize, segment: vc.segment, linkUp: vc.linkUp,
            promiscuous: vc.promiscuous, multicast: vc.multicast, coalesce: vc.coalesce, engine: vc.engine,
            qos: vc.qos,
          });
          vifs.set(vc.name, v);
          vifConfigs.set(vc.name, vc);
          if (vc.capture !== undefined) await captureVif(v, vc.capture); // issue 4
        } catch (e) {
          // createVifFor may have created the VIF before plugging failed (the guest exited)
          const v = devices.get(vc.device)!.vifs().find((x) => x.id === vc.name);
          if (v) {
            vifs.set(vc.name, v);
            vifConfigs.set(vc.name, vc);
          }
          throw at(vc.path, e);
        }
      }
    }
    const startMessage = 'startMessage' in opts ? opts.startMessage : 'go';
    if (startMessage !== undefined) for (const g of guests.values()) g.send(startMessage);
  } catch (e) {
    // Stop what we started (a caller-provided hypervisor is stopped as a whole) and report the cause.
    await stop().catch(() => {});
    throw e;
  }

  const guestsExited = config.guests.length === 0
    ? new Promise<void>(() => {})
    : Promise.all([...[...guests.values()].map((g) => g.exited), ...config.guests.filter((gc) => gc.vm).map((gc) => vmGuests.exited(gc.name))]).then(() => {});

  return { config, hypervisor: hv, devices, guests, vifs, uplinks, guestsExited, counters: snapshot, stop };
}
