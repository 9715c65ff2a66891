/**
 * The daemon's extension points. Features that land after the daemon plug in here with a few lines:
 *
 *  - UPLINK_KINDS: how to attach an uplink of a config `uplink.kind` to a running device
 *    (VXLAN and TAP add an entry each).
 *  - GUEST_KINDS: how to start a guest of a kind (isolates today; VM guests over vhost-user add an
 *    entry and a `kind` field in the guest's config).
 *  - VIF_FIELDS: which VIF config fields can change on a running VIF and how (QoS fields add an
 *    entry with `live: true` and an `apply`); a field that is not listed here is treated as
 *    immutable: changing it replaces the VIF (unplug, create, plug), which is always correct.
 *  - vifCreateOptions: config fields passed to Device.createVif (QoS fields add a line).
 */
import type { Device, Vif, VifOptions } from '../hypervisor/device.js';
import type { Hypervisor } from '../hypervisor/hypervisor.js';
import type { Guest } from '../hypervisor/guest.js';
import { bufferBytesFor, vifLayout } from '../layout/vif.js';
import { EchoUplink } from '../uplink/echo.js';
import { Wire } from '../uplink/wire.js';
import { NullUplink, type Uplink } from '../uplink/uplink.js';
import type { DeviceConfig, GuestConfig, VifConfig } from '../config/schema.js';

// ---------------------------------------------------------------------------------------------
// Uplinks

export interface UplinkContext {
  /** Running devices by name (the device being attached is among them). */
  devices: ReadonlyMap<string, Device>;
  /** Uplinks already attached, by device name (a wire is attached once, for both of its ends). */
  attached: ReadonlyMap<string, Uplink>;
}

export interface UplinkKind {
  /**
   * Attach this device's uplink. Returns the uplink for each device it now serves (a wire serves
   * both ends); [] if another device's attach already covered this one.
   */
  attach(device: Device, cfg: DeviceConfig, ctx: UplinkContext): Promise<[string, Uplink][]>;
}

export const UPLINK_KINDS: Record<string, UplinkKind> = {
  null: { attach: async (d) => [[d.name, new NullUplink(d)]] },
  echo: { attach: async (d) => [[d.name, await EchoUplink.attach(d)]] },
  wire: {
    async attach(d, cfg, ctx) {
      if (ctx.attached.has(d.name)) return []; // the other end connected this wire already
      const peerName = (cfg.uplink as { peer: string }).peer;
      const w = await Wire.connect(d, ctx.devices.get(peerName)!);
      return [[d.name, w], [peerName, w]];
    },
  },
};

// ---------------------------------------------------------------------------------------------
// Guests

export interface GuestKind {
  /** Start the guest and resolve once it can take VIFs. */
  start(hv: Hypervisor, gc: GuestConfig): Promise<Guest>;
}

export const GUEST_KINDS: Record<string, GuestKind> = {
  isolate: { start: (hv, gc) => hv.startGuest({ name: gc.name, module: gc.moduleUrl, args: gc.args }) },
};

/** A guest config's kind ('isolate' unless the config says otherwise). */
export const guestKindOf = (gc: GuestConfig): string => ((gc as unknown as { kind?: string }).kind ?? 'isolate');

// ---------------------------------------------------------------------------------------------
// VIF fields

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
  apply?: (device: Device, vif: Vif, to: VifConfig) => Promise<void>;
}

export const VIF_FIELDS: VifField[] = [
  { key: 'mac', live: true },
  { key: 'mtu', live: (to, vif) => bufferBytesFor(to.mtu) <= vifLayout(vif.queueSize, vif.bufferMtu).bufferBytes },
  { key: 'linkUp', live: true },
  { key: 'promiscuous', live: true },
  { key: 'multicast', live: true },
  { key: 'coalesce', live: true },
  // Immutable (the VIF's memory or its place depends on them): a change replaces the VIF.
  { key: 'device', live: false },
  { key: 'segment', live: false },
  { key: 'queueSize', live: false },
  { key: 'engine', live: false },
  // QoS (docs/qos.md): changed in place through the device's QoS table.
  { key: 'qos', live: true, apply: async (d, v, to) => void (await d.setVif(v.id, { qos: to.qos ?? {} })) },
];

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
