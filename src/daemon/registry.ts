/**
 * The daemon's extension points. Features that land after the daemon plug in here with a few lines:
 *
 *  - UPLINK_KINDS: the uplink kinds the daemon runs (null, echo, wire, vxlan, tap), each attached
 *    by config/apply.ts attachUplink (the code `svnic run` uses), with what its counters mean
 *    (drops by reason, FDB size) for /metrics, the API and the dashboard.
 *  - GUEST_KINDS: how to start a guest of a kind and give it its VIFs: isolates (worker threads)
 *    and VMs (`vms:` in the config, one VIF over vhost-user; vm-guest.ts).
 *  - VIF_FIELDS: which VIF config fields can change on a running VIF and how (`capture` has an
 *    `apply` and an `onCreate`; QoS fields add an entry with `live: true`); a field that is not
 *    listed here is treated as immutable: changing it replaces the VIF (unplug, create, plug),
 *    which is always correct.
 *  - vifCreateOptions: config fields passed to Device.createVif (QoS fields add a line).
 */
import { closeSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Device, Vif, VifOptions } from '../hypervisor/device.js';
import { SvnicError } from '../hypervisor/errors.js';
import type { Hypervisor } from '../hypervisor/hypervisor.js';
import { VmGuest, type GuestHandle } from './vm-guest.js';
import { bufferBytesFor, vifLayout } from '../layout/vif.js';
import type { Uplink } from '../uplink/uplink.js';
import { VXLAN_DROP_COUNTERS } from '../uplink/vxlan-codec.js';
import { TAP_DROP_COUNTERS } from '../uplink/tap-counters.js';
import { attachUplink } from '../config/apply.js';
import { captureVif } from '../capture/vif-capture.js';
import type { DeviceConfig, GuestConfig, UplinkConfig, VifConfig } from '../config/schema.js';
import type { TapUplinkConfig, VxlanUplinkConfig } from '../config/net-uplinks.js';
import type { VxlanUplink } from '../uplink/vxlan.js';
import type { TapUplink } from '../uplink/tap.js';

// ---------------------------------------------------------------------------------------------
// Uplinks

export interface UplinkContext {
  /** Running devices by name (the device being attached is among them). */
  devices: ReadonlyMap<string, Device>;
  /** Uplinks already attached, by device name (a wire is attached once, for both of its ends). */
  attached: ReadonlyMap<string, Uplink>;
  /** Resolve a file path the config gives (a capture file) against the config file's directory. */
  resolvePath: (p: string) => string;
}

/**
 * What an uplink kind's counters (Uplink.counters(), read from shared memory) mean, for /metrics,
 * the API and the dashboard. Names are the uplink's own counter names.
 */
export interface UplinkCounterSpec {
  /** Frames / bytes toward the network (to_network) and from it (from_network). */
  frames?: { toNetwork: string; fromNetwork: string };
  bytes?: { toNetwork: string; fromNetwork: string };
  /** Outer packets (VXLAN: UDP datagrams; a flooded frame is one packet per remote VTEP). */
  packets?: { toNetwork: string; fromNetwork: string };
  /** Drop counters, by reason (every one exported, zeros included). */
  drops: readonly string[];
  /** Forwarding-table events (learned, moved, refused because full, aged out). */
  fdbEvents?: readonly string[];
  /** Entries in the learned forwarding table now. */
  fdbEntries?: (c: Record<string, number>) => number;
}

export interface UplinkKind {
  /**
   * Attach this device's uplink. Returns the uplink for each device it now serves (a wire serves
   * both ends); [] if another device's attach already covered this one.
   */
  attach(device: Device, cfg: DeviceConfig, ctx: UplinkContext): Promise<[string, Uplink][]>;
  counters: UplinkCounterSpec;
  /** Uplink config fields that change on the running uplink with `change` (others: NEEDS_RESTART). */
  liveFields?: readonly string[];
  change?: (uplink: Uplink, to: UplinkConfig, ctx: UplinkContext) => Promise<void>;
}

/**
 * Every kind attaches through config/apply.ts attachUplink, the code `svnic run` uses. The daemon
 * only resolves capture paths against the config file's directory first (as it does module paths).
 */
const shared = async (d: Device, cfg: DeviceConfig, ctx: UplinkContext): Promise<[string, Uplink][]> => {
  const u = cfg.uplink;
  const withPath = (u.kind === 'vxlan' || u.kind === 'tap') && u.capture ? { ...u, capture: { ...u.capture, path: ctx.resolvePath(u.capture.path) } } : u;
  return attachUplink(d, withPath as UplinkConfig, ctx.devices);
};

export const UPLINK_KINDS: Record<string, UplinkKind> = {
  null: { attach: shared, counters: { drops: [] } },
  echo: { attach: shared, counters: { drops: [] } },
  wire: { attach: shared, counters: { drops: [] } },
  // issue 4 (docs/uplinks.md): counters in uplink/vxlan-codec.ts and uplink/tap-counters.ts
  vxlan: {
    attach: shared,
    liveFields: ['capture'],
    async change(up, to, ctx) {
      const c = (to as VxlanUplinkConfig).capture;
      const path = c ? writablePath(ctx.resolvePath(c.path)) : null;
      await (up as VxlanUplink).capture(path, c?.mode ?? 'inner');
    },
    counters: {
      frames: { toNetwork: 'tx_frames', fromNetwork: 'rx_frames' },
      bytes: { toNetwork: 'tx_bytes', fromNetwork: 'rx_bytes' },
      packets: { toNetwork: 'tx_packets', fromNetwork: 'rx_packets' },
      drops: VXLAN_DROP_COUNTERS,
      fdbEvents: ['learned', 'learn_moved', 'learn_full', 'aged_out'],
      // Entries leave the table only by ageing (vxlan-fdb.ts), so this is exact; an expired entry
      // the ager has not swept yet still counts (lookups already ignore it).
      fdbEntries: (c) => (c.learned ?? 0) - (c.aged_out ?? 0),
    },
  },
  tap: {
    attach: shared,
    liveFields: ['capture'],
    async change(up, to, ctx) {
      const c = (to as TapUplinkConfig).capture;
      await (up as TapUplink).capture(c ? writablePath(ctx.resolvePath(c.path)) : null);
    },
    counters: {
      frames: { toNetwork: 'tx_frames', fromNetwork: 'rx_frames' },
      bytes: { toNetwork: 'tx_bytes', fromNetwork: 'rx_bytes' },
      drops: TAP_DROP_COUNTERS,
    },
  },
};

/** An uplink's counters with their meaning: drops summed and by reason, FDB size (for the API). */
export function uplinkSummary(kind: string, c: Record<string, number>): { drops: number; dropReasons: Record<string, number>; fdbEntries?: number } {
  const spec = UPLINK_KINDS[kind]?.counters;
  const dropReasons: Record<string, number> = {};
  let drops = 0;
  for (const k of spec?.drops ?? []) {
    const v = c[k] ?? 0;
    drops += v;
    if (v) dropReasons[k] = v;
  }
  return { drops, dropReasons, ...(spec?.fdbEntries ? { fdbEntries: spec.fdbEntries(c) } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Guests

export interface GuestKindContext {
  /** Resolve a file path the config gives (a vhost-user socket) against the config file's directory. */
  resolvePath: (p: string) => string;
}

export interface GuestKind {
  /** Start the guest and resolve once it can take VIFs. */
  start(hv: Hypervisor, gc: GuestConfig, ctx: GuestKindContext): Promise<GuestHandle>;
  /** Give a created VIF to the guest (default: hot-plug it into an isolate, Hypervisor.plug). */
  plug?(guest: GuestHandle, vif: Vif): Promise<void>;
  /** Take a VIF back and destroy it (default: Hypervisor.unplug). */
  unplug?(guest: GuestHandle, vif: Vif): Promise<void>;
}

export const GUEST_KINDS: Record<string, GuestKind> = {
  isolate: { start: (hv, gc) => hv.startGuest({ name: gc.name, module: gc.moduleUrl, args: gc.args }) },
  // issue 5: `vms:` in the config; one VIF served over vhost-user, QEMU booted by the daemon with `boot`
  vm: {
    start: async (_hv, gc, ctx) => new VmGuest(gc.name, gc, ctx.resolvePath),
    plug: (g, vif) => (g as VmGuest).plug(vif),
    unplug: (g, vif) => (g as VmGuest).unplug(vif),
  },
};

/** A guest config's kind: `vm` for the config's `vms:` entries, else `isolate`. */
export const guestKindOf = (gc: GuestConfig): string => (gc.vm ? 'vm' : ((gc as unknown as { kind?: string }).kind ?? 'isolate'));

// ---------------------------------------------------------------------------------------------
// VIF fields

export interface VifFieldContext {
  /** Resolve a file path the config gives against the config file's directory. */
  resolvePath: (p: string) => string;
}

export interface VifField {
  key: string;
  /**
   * Whether a change of this field can be applied to the running VIF `vif`; false means the VIF is
   * replaced. A function can decide per value (MTU: only up to what the VIF's buffers hold).
   */
  live: boolean | ((to: VifConfig, vif: Vif) => boolean);
  /**
   * Apply a live change. Default: the field goes into Device.setVif's settings under its own key
   * (mac, mtu, linkUp, promiscuous, multicast, coalesce).
   */
  apply?: (device: Device, vif: Vif, to: VifConfig, ctx?: VifFieldContext) => Promise<void>;
  /** Called once a VIF with this field set has been created (capture starts before the guest sends). */
  onCreate?: (vif: Vif, vc: VifConfig, ctx: VifFieldContext) => Promise<void>;
}

export const VIF_FIELDS: VifField[] = [
  { key: 'mac', live: true },
  { key: 'mtu', live: (to, vif) => bufferBytesFor(to.mtu) <= vifLayout(vif.queueSize, vif.bufferMtu).bufferBytes },
  { key: 'linkUp', live: true },
  { key: 'promiscuous', live: true },
  { key: 'multicast', live: true },
  { key: 'coalesce', live: true },
  // issue 4: start, move or stop the VIF's pcap capture (a shared flag per slot the engines read:
  // nothing is messaged, the VIF keeps its slot and its guest keeps its driver).
  { key: 'capture', live: true, apply: (_d, vif, to, ctx) => startCapture(vif, to, ctx), onCreate: (vif, vc, ctx) => startCapture(vif, vc, ctx) },
  // Immutable (the VIF's memory or its place depends on them): a change replaces the VIF.
  { key: 'device', live: false },
  { key: 'segment', live: false },
  { key: 'queueSize', live: false },
  { key: 'engine', live: false },
  // QoS (docs/qos.md): changed in place through the device's QoS table.
  { key: 'qos', live: true, apply: async (d, v, to) => void (await d.setVif(v.id, { qos: to.qos ?? {} })) },
];

/**
 * Point a VIF's capture where its config says (or stop it). The file is opened for writing first,
 * so a path the daemon cannot write is refused (BAD_OPTION, rolled back) before the running
 * capture is touched.
 */
async function startCapture(vif: Vif, vc: VifConfig, ctx?: VifFieldContext): Promise<void> {
  const at = ctx?.resolvePath ?? ((p: string) => resolve(p));
  await captureVif(vif, vc.capture === undefined ? null : writablePath(at(vc.capture)));
}

/** `path` once it is known to open for writing (a capture file), else BAD_OPTION before anything changes. */
function writablePath(path: string): string {
  try {
    closeSync(openSync(path, 'a'));
  } catch (e) {
    throw new SvnicError('BAD_OPTION', `capture: cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; give a path in a directory the daemon can write`);
  }
  return path;
}

/** Keys of VifConfig that are bookkeeping, not settings. */
export const VIF_META_KEYS = new Set(['name', 'path']);

/** Device.createVif options for a VIF config. */
export function vifCreateOptions(vc: VifConfig): VifOptions {
  return {
    name: vc.name, mac: vc.mac, mtu: vc.mtu, queueSize: vc.queueSize, segment: vc.segment, linkUp: vc.linkUp,
    promiscuous: vc.promiscuous, multicast: vc.multicast, coalesce: vc.coalesce, engine: vc.engine,
    qos: vc.qos,
  };
}
