/**
 * The `svnic run` configuration: one file that describes devices (with their uplinks), guests (a
 * module and its arguments) and the guests' VIFs. docs/config.md is the reference for users.
 *
 * Validation has two stages, and both report every problem they find as `config: <path>: <message>`
 * where <path> is where the key sits in the file (`guests.1.vifs.0.mtu`):
 *  1. shape: zod strict objects (unknown keys are errors, with a "did you mean" hint), types, ranges
 *     and defaults;
 *  2. cross-field: unique device, guest and VIF names, unique MACs per segment (per L2 domain:
 *     devices joined by a wire count as one), VIF device references, engine pins, maxVifs, wires.
 * Stage 2 runs only once stage 1 passes. Then VIFs without a name or MAC get one (deterministic).
 *
 * This file does no I/O: files, YAML and module paths are in load.ts.
 */
import { z } from 'zod';
import { ConfigError, errorMap, shapeIssues, type ConfigIssue } from './issues.js';
import { tapUplinkSchema, vxlanUplinkSchema, type TapUplinkConfig, type VxlanUplinkConfig } from './net-uplinks.js';
import { vmSchema, type VmGuestConfig } from './vm-schema.js';

export { ConfigError, formatIssue, joinPath, type ConfigIssue } from './issues.js';

// Limits mirror the checks of hypervisor/device.ts, so a bad value is reported with its path at load
// time instead of as an error from the device in the middle of starting.
export const LIMITS = {
  engines: 16,
  maxVifs: 1024,
  minMtu: 68,
  maxMtu: 9000,
  maxQueueSize: 32768,
  maxSegment: 0x3fff,
  maxCoalesceFrames: 65536,
  maxCoalesceUsecs: 1_000_000,
  maxDevices: 256,
} as const;

export const DEVICE_DEFAULTS = {
  engines: 1,
  maxVifs: 1024,
  interruptMode: 'direct',
  spinUs: 100,
  sweepMs: 100,
  batch: 32,
  ringSlots: 512,
  routerSpinUs: 0,
} as const;

export const VIF_DEFAULTS = {
  mtu: 1500,
  queueSize: 256,
  segment: 0,
  linkUp: true,
  promiscuous: false,
} as const;

// ---------------------------------------------------------------------------------------------
// Stage 1: shape

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

const name = () => z.string().regex(NAME_RE, { error: 'must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit' });
const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
const pow2 = (min: number, max: number) =>
  z.int().min(min).max(max).refine(isPow2, { error: `must be a power of two in ${min}..${max}` });

const macBytes = (m: string) => m.split(':').map((h) => parseInt(h, 16));
const unicastMac = z
  .string()
  .regex(MAC_RE, { error: 'must be a MAC address written like 02:00:00:00:00:01' })
  .refine((m) => (macBytes(m)[0]! & 1) === 0, { error: 'must be a unicast MAC (first byte even); multicast groups go in `multicast`' })
  .refine((m) => macBytes(m).some((b) => b !== 0), { error: 'the all-zero MAC is not a valid VIF address' })
  .transform((m) => m.toLowerCase());
const multicastMac = z
  .string()
  .regex(MAC_RE, { error: 'must be a MAC address written like 01:00:5e:00:00:01' })
  .refine((m) => (macBytes(m)[0]! & 1) === 1, { error: 'must be a multicast MAC (first byte odd), e.g. 01:00:5e:00:00:01' })
  .transform((m) => m.toLowerCase());

/** `uplink: echo` is short for `uplink: { kind: echo }`; YAML `kind: null` (a null) means "null". */
function normalizeUplink(v: unknown): unknown {
  if (v === null || typeof v === 'string') return { kind: v ?? 'null' };
  if (typeof v === 'object' && !Array.isArray(v) && (v as { kind?: unknown }).kind === null) return { ...v, kind: 'null' };
  return v;
}

const uplinkSchema = z.preprocess(
  normalizeUplink,
  z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('null') }),
    z.strictObject({
      kind: z.literal('echo'),
    }),
    z.strictObject({
      kind: z.literal('wire'),
      /** The name of the device at the other end of the cable. */
      peer: name(),
    }),
    // ---- issue 4: uplinks to real networks (config/net-uplinks.ts) ----
    vxlanUplinkSchema,
    tapUplinkSchema,
    // ---- end issue 4 ----
  ]),
);

// ---- QoS (docs/qos.md) -----------------------------------------------------------------------
// Shapes only; hypervisor/qos.ts checks the same ranges for API callers, and admission control
// (guarantees vs capacity) runs in stage 2 per device and again per engine when VIFs are created.
const rateLimitSchema = z.strictObject({
  bitsPerSec: z.number().min(0).max(1e12).optional(),
  framesPerSec: z.number().min(0).max(1e9).optional(),
  burstBytes: z.number().min(0).max(2 ** 30).optional(),
  burstFrames: z.number().min(0).max(2 ** 30).optional(),
});
const vifQosSchema = z.strictObject({
  weight: z.number().min(1).max(1000).optional(),
  priority: z.int().min(0).max(7).optional(),
  guestTx: rateLimitSchema.optional(),
  guestRx: rateLimitSchema.optional(),
  guaranteedBitsPerSec: z.number().min(0).max(1e12).optional(),
});
const deviceQosSchema = z.strictObject({
  capacityBitsPerSec: z.number().min(0).max(1e12).optional(),
  priorityShare: z.number().gt(0).max(1).optional(),
  quantumBytes: z.int().min(64).max(1_048_576).optional(),
});
export type VifQosConfig = z.output<typeof vifQosSchema>;
export type DeviceQosConfig = z.output<typeof deviceQosSchema>;

/** Stage 2: per device, the guarantees of its VIFs must fit in its capacity. */
function checkQosAdmission(devices: DeviceConfig[], vifs: VifConfig[], issue: (path: string, message: string) => void): void {
  for (const d of devices) {
    const asked = vifs.filter((v) => v.device === d.name && (v.qos?.guaranteedBitsPerSec ?? 0) > 0);
    if (asked.length === 0) continue;
    const cap = d.qos?.capacityBitsPerSec ?? 0;
    const sum = asked.reduce((s, v) => s + v.qos!.guaranteedBitsPerSec!, 0);
    if (cap <= 0) issue(`${d.path}.qos.capacityBitsPerSec`, `required: VIFs ${asked.map((v) => `"${v.name}"`).join(', ')} ask for guaranteed rates`);
    else if (sum > cap) issue(`${d.path}.qos.capacityBitsPerSec`, `the guaranteed rates of VIFs ${asked.map((v) => `"${v.name}" (${v.qos!.guaranteedBitsPerSec})`).join(', ')} add up to ${sum} bit/s, more than the capacity ${cap}`);
  }
}
// ---- end QoS ----------------------------------------------------------------------------------

const deviceSchema = z.strictObject({
  name: name().optional(),
  engines: z.int().min(1).max(LIMITS.engines).default(DEVICE_DEFAULTS.engines),
  maxVifs: z.int().min(1).max(LIMITS.maxVifs).default(DEVICE_DEFAULTS.maxVifs),
  interruptMode: z.enum(['direct', 'hypervisor']).default(DEVICE_DEFAULTS.interruptMode),
  spinUs: z.number().min(0).max(1_000_000).default(DEVICE_DEFAULTS.spinUs),
  sweepMs: z.number().min(1).max(60_000).default(DEVICE_DEFAULTS.sweepMs),
  batch: z.int().min(1).max(4096).default(DEVICE_DEFAULTS.batch),
  ringSlots: pow2(2, 65536).default(DEVICE_DEFAULTS.ringSlots),
  routerSpinUs: z.number().min(0).max(1_000_000).default(DEVICE_DEFAULTS.routerSpinUs),
  uplink: uplinkSchema.default({ kind: 'null' }),
  qos: deviceQosSchema.optional(),
});

const vifSchema = z.strictObject({
  name: name().optional(),
  /** Device name; may be left out when there is exactly one device. */
  device: name().optional(),
  mac: unicastMac.optional(),
  mtu: z.int().min(LIMITS.minMtu).max(LIMITS.maxMtu).default(VIF_DEFAULTS.mtu),
  queueSize: pow2(2, LIMITS.maxQueueSize).default(VIF_DEFAULTS.queueSize),
  segment: z.int().min(0).max(LIMITS.maxSegment).default(VIF_DEFAULTS.segment),
  linkUp: z.boolean().default(VIF_DEFAULTS.linkUp),
  promiscuous: z.boolean().default(VIF_DEFAULTS.promiscuous),
  multicast: z.array(multicastMac).default([]),
  coalesce: z
    .strictObject({
      frames: z.int().min(1).max(LIMITS.maxCoalesceFrames).default(1),
      usecs: z.number().min(0).max(LIMITS.maxCoalesceUsecs).default(0),
    })
    .default({ frames: 1, usecs: 0 }),
  /** Pin to an engine of its device; default: the engine with the fewest VIFs. */
  engine: z.int().min(0).optional(),
  qos: vifQosSchema.optional(),
  /** issue 4: write this VIF's traffic to a pcap file (relative to the working directory). */
  capture: z.string().min(1).optional(),
});

const guestSchema = z.strictObject({
  name: name(),
  module: z.string().min(1),
  args: z.record(z.string(), z.unknown()).default({}),
  vifs: z.array(vifSchema).default([]),
});

/** The file's shape (stage 1). Exported for tools that want the JSON schema (z.toJSONSchema). */
export const configSchema = z.strictObject({
  /** One device (shorthand for a one-element `devices`). */
  device: deviceSchema.optional(),
  devices: z.array(deviceSchema).min(1).max(LIMITS.maxDevices).optional(),
  guests: z.array(guestSchema).default([]),
  /** VM guests over vhost-user (issue 5; vm-schema.ts). */
  vms: z.array(vmSchema(vifSchema, name)).default([]),
});

export type RawConfig = z.output<typeof configSchema>;

// ---------------------------------------------------------------------------------------------
// The validated configuration

export type UplinkConfig = { kind: 'null' } | { kind: 'echo' } | { kind: 'wire'; peer: string } | VxlanUplinkConfig | TapUplinkConfig;

export interface DeviceConfig {
  name: string;
  engines: number;
  maxVifs: number;
  interruptMode: 'direct' | 'hypervisor';
  spinUs: number;
  sweepMs: number;
  batch: number;
  ringSlots: number;
  routerSpinUs: number;
  uplink: UplinkConfig;
  qos?: DeviceQosConfig;
  /** Where this device is in the file (`device` or `devices.N`), for messages. */
  path: string;
}

export interface VifConfig {
  name: string;
  device: string;
  mac: string;
  mtu: number;
  queueSize: number;
  segment: number;
  linkUp: boolean;
  promiscuous: boolean;
  multicast: string[];
  coalesce: { frames: number; usecs: number };
  engine?: number;
  qos?: VifQosConfig;
  /** pcap file of this VIF's traffic (issue 4). */
  capture?: string;
  path: string;
}

export interface GuestConfig {
  name: string;
  /** The module as written in the file. */
  module: string;
  /** What the guest worker imports: a file: URL once load.ts has resolved it, else `module`. */
  moduleUrl: string;
  args: Record<string, unknown>;
  vifs: VifConfig[];
  path: string;
  /** Set for a VM guest (`vms:` in the file): no module; its one VIF is served over vhost-user. */
  vm?: VmGuestConfig;
}

export interface Config {
  devices: DeviceConfig[];
  guests: GuestConfig[];
}

// ---------------------------------------------------------------------------------------------
// Stage 2: cross-field checks and defaults that depend on other entries

export interface ValidateOptions {
  /**
   * Called for each guest module (after the shape checks) to turn what the file says into what the
   * guest worker imports; it throws an Error whose message is reported at `guests.N.module`.
   * Default: the module string as written. load.ts passes a resolver relative to the file.
   */
  resolveModule?: (module: string) => string;
}

/** Validate parsed YAML/JSON data. Throws ConfigError (code CONFIG_INVALID) listing every issue. */
export function validateConfig(data: unknown, opts: ValidateOptions = {}): Config {
  const r = configSchema.safeParse(data, { error: errorMap, reportInput: true });
  if (!r.success) throw new ConfigError(shapeIssues(r.error, configSchema));
  const raw = r.data;
  const issues: ConfigIssue[] = [];
  const issue = (path: string, message: string) => issues.push({ path, message });

  // devices
  if (raw.device && raw.devices) issue('devices', 'give either `device` (one device) or `devices` (a list), not both');
  const rawDevices = raw.devices
    ? raw.devices.map((d, i) => ({ d, path: `devices.${i}` }))
    : [{ d: raw.device ?? deviceSchema.parse({}), path: 'device' }];
  const devices: DeviceConfig[] = rawDevices.map(({ d, path }, i) => ({ ...d, name: d.name ?? `dev${i}`, path }));
  const byName = new Map<string, DeviceConfig>();
  for (const d of devices) {
    const prev = byName.get(d.name);
    if (prev) issue(`${d.path}.name`, `duplicate device name "${d.name}" (${prev.path} has it too)`);
    else byName.set(d.name, d);
  }

  // wires: each joins two distinct devices; both ends may name each other, nothing else
  const domain = new Map(devices.map((d) => [d.name, d.name]));
  const root = (n: string): string => (domain.get(n) === n ? n : root(domain.get(n)!));
  for (const d of devices) {
    if (d.uplink.kind !== 'wire') continue;
    const peerName = d.uplink.peer;
    const peer = byName.get(peerName);
    const at = `${d.path}.uplink.peer`;
    if (peerName === d.name) issue(at, 'a wire joins two different devices');
    else if (!peer) issue(at, `no device named "${peerName}"; devices: ${[...byName.keys()].join(', ')}`);
    else if (peer.uplink.kind === 'wire' && peer.uplink.peer !== d.name) {
      issue(at, `device "${peerName}" is already wired to "${peer.uplink.peer}"; a device has one uplink`);
    } else if (peer.uplink.kind !== 'wire' && peer.uplink.kind !== 'null') {
      issue(at, `device "${peerName}" already has a ${peer.uplink.kind} uplink; a device has one uplink`);
    } else {
      const wiredBy = devices.find((o) => o !== d && o !== peer && o.uplink.kind === 'wire' && o.uplink.peer === peerName);
      if (wiredBy) issue(at, `device "${peerName}" is already wired to "${wiredBy.name}"; a device has one uplink`);
      domain.set(root(d.name), root(peerName));
    }
  }

  // guests
  const guests: GuestConfig[] = [];
  const guestAt = new Map<string, string>();
  raw.guests.forEach((g, gi) => {
    const path = `guests.${gi}`;
    const prev = guestAt.get(g.name);
    if (prev) issue(`${path}.name`, `duplicate guest name "${g.name}" (${prev}.name has it too)`);
    else guestAt.set(g.name, path);
    let moduleUrl = g.module;
    if (opts.resolveModule) {
      try {
        moduleUrl = opts.resolveModule(g.module);
      } catch (e) {
        issue(`${path}.module`, (e as Error).message);
      }
    }
    const vifs: VifConfig[] = g.vifs.map((v, vi) => {
      const vpath = `${path}.vifs.${vi}`;
      let device = v.device;
      if (device === undefined) {
        if (devices.length === 1) device = devices[0]!.name;
        else issue(`${vpath}.device`, `required when there is more than one device (${[...byName.keys()].join(', ')})`);
      } else if (!byName.has(device)) {
        issue(`${vpath}.device`, `no device named "${device}"; devices: ${[...byName.keys()].join(', ')}`);
      }
      const dev = device !== undefined ? byName.get(device) : undefined;
      if (dev && v.engine !== undefined && v.engine >= dev.engines) {
        issue(`${vpath}.engine`, `device "${dev.name}" has ${dev.engines} engine${dev.engines === 1 ? '' : 's'}; engine must be in 0..${dev.engines - 1}`);
      }
      const { mac, name: vname, ...rest } = v;
      return { ...rest, name: vname ?? `${g.name}-eth${vi}`, device: device ?? '', mac: mac ?? '', path: vpath };
    });
    guests.push({ name: g.name, module: g.module, moduleUrl, args: g.args, vifs, path });
  });
  // ---- VM guests (issue 5): a guest entry with `vm` set and its one VIF, checked like the others.
  raw.vms.forEach((m, mi) => {
    const path = `vms.${mi}`;
    const prev = guestAt.get(m.name);
    if (prev) issue(`${path}.name`, `duplicate guest name "${m.name}" (${prev}.name has it too)`);
    else guestAt.set(m.name, path);
    const vpath = `${path}.vif`;
    let device = m.vif.device;
    if (device === undefined) {
      if (devices.length === 1) device = devices[0]!.name;
      else issue(`${vpath}.device`, `required when there is more than one device (${[...byName.keys()].join(', ')})`);
    } else if (!byName.has(device)) issue(`${vpath}.device`, `no device named "${device}"; devices: ${[...byName.keys()].join(', ')}`);
    const { mac, name: vname, ...rest } = m.vif;
    const vif: VifConfig = { ...rest, name: vname ?? `${m.name}-eth0`, device: device ?? '', mac: mac ?? '', path: vpath };
    guests.push({ name: m.name, module: '', moduleUrl: '', args: {}, vifs: [vif], path, vm: { socket: m.socket, mode: m.mode, offloads: m.offloads, boot: m.boot } });
  });
  // ---- end of VM guests
  const allVifs = guests.flatMap((g) => g.vifs);

  // VIF names: unique across the whole file (so counters can be keyed by VIF name)
  const vifAt = new Map<string, string>();
  for (const v of allVifs) {
    const prev = vifAt.get(v.name);
    if (prev) issue(`${v.path}.name`, `duplicate VIF name "${v.name}" (${prev} has it too)`);
    else vifAt.set(v.name, v.path);
  }

  // VIF slots per device
  for (const d of devices) {
    const n = allVifs.filter((v) => v.device === d.name).length;
    if (n > d.maxVifs) issue(`${d.path}.maxVifs`, `${n} VIFs are configured on device "${d.name}", more than maxVifs (${d.maxVifs})`);
  }

  // MACs: unique per segment within an L2 domain (a device, or devices joined by a wire)
  const macKey = (v: VifConfig, mac: string) => `${byName.has(v.device) ? root(v.device) : v.device}/${v.segment}/${mac}`;
  const macAt = new Map<string, string>();
  for (const v of allVifs) {
    if (!v.mac) continue;
    const k = macKey(v, v.mac);
    const prev = macAt.get(k);
    if (prev) issue(`${v.path}.mac`, `duplicate MAC ${v.mac} in segment ${v.segment} (${prev}.mac has it too)`);
    else macAt.set(k, v.path);
  }

  checkQosAdmission(devices, allVifs, issue);

  if (issues.length) throw new ConfigError(issues);

  // A wire declared on one end: the other end (uplink null) gets the wire back to it.
  for (const d of devices) {
    if (d.uplink.kind === 'wire') {
      const peer = byName.get(d.uplink.peer)!;
      if (peer.uplink.kind === 'null') peer.uplink = { kind: 'wire', peer: d.name };
    }
  }

  // Default MACs: 02:53:00:<device index>:<n hi>:<n lo>, locally administered, skipping any MAC the
  // file gives explicitly. (Deterministic, so the same file gives the same MACs on every run.)
  const taken = new Set(allVifs.filter((v) => v.mac).map((v) => v.mac));
  const next = new Map<string, number>();
  for (const v of allVifs) {
    if (v.mac) continue;
    const di = devices.findIndex((d) => d.name === v.device);
    let n = next.get(v.device) ?? 0;
    let mac: string;
    do {
      mac = ['02', '53', '00', di, n >> 8, n & 0xff].map((x) => (typeof x === 'string' ? x : x.toString(16).padStart(2, '0'))).join(':');
      n++;
    } while (taken.has(mac));
    next.set(v.device, n);
    taken.add(mac);
    v.mac = mac;
  }
  return { devices, guests };
}
