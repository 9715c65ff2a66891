/**
 * Desired state vs running state: the list of steps that turns one into the other, and the report
 * of what changes. Pure (no I/O, no devices touched), so it is unit-tested on its own and a plan can
 * be shown without applying it (dry run).
 *
 * Rules:
 *  - devices: added or removed; a change to a running device's settings or uplink is refused
 *    (NEEDS_RESTART, with the config path) because engines and rings are sized at creation, except
 *    the uplink fields its kind can change live (a VXLAN or TAP uplink's `capture`);
 *  - guests: added, removed, or replaced (stopped and started again, with their VIFs re-created)
 *    when their kind, module or args change; a guest whose worker has exited is started again;
 *  - VIFs: added, removed, changed in place for the fields registry.ts lists as live, or replaced
 *    (unplugged, created, plugged) for any other field, for a move to another guest, when its
 *    guest is replaced, or when its new MAC is still another running VIF's (a swap).
 * Step order: remove VIFs, stop guests, remove devices, add devices, attach uplinks, change uplinks, start guests,
 * change VIFs, add VIFs (in file order), send the start message to the guests started.
 */
import type { Vif } from '../hypervisor/device.js';
import type { Config, DeviceConfig, GuestConfig, VifConfig } from '../config/schema.js';
import { ApiError } from './errors.js';
import { UPLINK_KINDS, VIF_FIELDS, VIF_META_KEYS, guestKindOf } from './registry.js';

/** What runs now, as the plan needs to see it. */
export interface RunningView {
  devices: ReadonlyMap<string, DeviceConfig>;
  /** Guests whose worker is running. */
  guests: ReadonlyMap<string, GuestConfig>;
  /** VIFs that exist (not destroyed), with the guest they are plugged into. */
  vifs: ReadonlyMap<string, { cfg: VifConfig; guest: string; vif: Vif }>;
}

export type Step =
  | { op: 'remove-vif'; vif: string }
  | { op: 'stop-guest'; guest: string }
  | { op: 'remove-device'; device: string }
  | { op: 'add-device'; device: DeviceConfig }
  | { op: 'attach-uplink'; device: string }
  | { op: 'change-uplink'; device: string; to: DeviceConfig; fields: string[] }
  | { op: 'start-guest'; guest: GuestConfig }
  | { op: 'change-vif'; vif: string; to: VifConfig; fields: string[] }
  | { op: 'add-vif'; vif: VifConfig; guest: string }
  | { op: 'start-message'; guest: string };

export type ChangeAction = 'added' | 'removed' | 'changed' | 'replaced' | 'restarted';

export interface Change {
  kind: 'device' | 'guest' | 'vif';
  name: string;
  action: ChangeAction;
  /** For changed/replaced: the fields that differ. */
  fields?: Record<string, { from: unknown; to: unknown }>;
  /** Why a replacement or restart was needed. */
  reason?: string;
}

export interface Plan {
  steps: Step[];
  changes: Change[];
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Keys that differ between two config objects, ignoring `skip`. */
function diffKeys<T extends object>(a: T, b: T, skip: Set<string>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => !skip.has(k) && !same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])).sort();
}

const fieldsOf = (a: object, b: object, keys: string[]): Record<string, { from: unknown; to: unknown }> =>
  Object.fromEntries(keys.map((k) => [k, { from: (a as Record<string, unknown>)[k], to: (b as Record<string, unknown>)[k] }]));

/** Compare a guest as running with the same guest as desired; a reason to restart it, or null. */
function guestRestartReason(from: GuestConfig, to: GuestConfig): string | null {
  if (guestKindOf(from) !== guestKindOf(to)) return `kind ${guestKindOf(from)} -> ${guestKindOf(to)}`;
  if (from.moduleUrl !== to.moduleUrl) return `module ${from.module} -> ${to.module}`;
  if (!same(from.args, to.args)) return 'args changed';
  const other = diffKeys(from, to, new Set(['name', 'module', 'moduleUrl', 'args', 'vifs', 'path', 'kind']));
  return other.length ? `${other.join(', ')} changed` : null;
}

/** Plan the way from `running` to `desired`. Throws ApiError NEEDS_RESTART for changes it cannot make live. */
export function planChanges(running: RunningView, desired: Config): Plan {
  const steps: Step[] = [];
  const changes: Change[] = [];
  const desiredDevices = new Map(desired.devices.map((d) => [d.name, d]));
  const desiredGuests = new Map(desired.guests.map((g) => [g.name, g]));
  const desiredVifs = new Map<string, { cfg: VifConfig; guest: string }>();
  for (const g of desired.guests) for (const v of g.vifs) desiredVifs.set(v.name, { cfg: v, guest: g.name });

  // Devices: refuse changes to running ones before anything else, except the uplink fields its
  // kind can change live (registry.ts UPLINK_KINDS liveFields: a VXLAN or TAP capture).
  const refused: { path: string; message: string }[] = [];
  const uplinkSteps: Step[] = [];
  for (const [name, from] of running.devices) {
    const to = desiredDevices.get(name);
    if (!to) continue;
    const keys = diffKeys(from, to, new Set(['path', 'name']));
    const live = UPLINK_KINDS[from.uplink.kind]?.liveFields ?? [];
    const upKeys = keys.includes('uplink') && from.uplink.kind === to.uplink.kind ? diffKeys(from.uplink, to.uplink, new Set()) : [];
    const uplinkLive = upKeys.length > 0 && upKeys.every((k) => live.includes(k));
    if (uplinkLive) {
      uplinkSteps.push({ op: 'change-uplink', device: name, to, fields: upKeys });
      changes.push({ kind: 'device', name, action: 'changed', fields: Object.fromEntries(upKeys.map((k) => [`uplink.${k}`, { from: (from.uplink as Record<string, unknown>)[k], to: (to.uplink as Record<string, unknown>)[k] }])) });
    }
    for (const k of keys) {
      if (k === 'uplink' && uplinkLive) continue;
      refused.push({
        path: `${to.path}.${k}`,
        message: `device "${name}" is running with ${k} ${JSON.stringify((from as unknown as Record<string, unknown>)[k])}; it cannot change while the device runs (restart the daemon, or give the device a new name)`,
      });
    }
  }
  if (refused.length) {
    throw new ApiError('NEEDS_RESTART', 409, refused.map((r) => `config: ${r.path}: ${r.message}`).join('\n'), { issues: refused });
  }
  const removedDevices = [...running.devices.keys()].filter((n) => !desiredDevices.has(n));
  const addedDevices = desired.devices.filter((d) => !running.devices.has(d.name));

  // Guests: removed, restarted (changed, or no longer running), added.
  const stopGuests: string[] = [];
  const startGuests: GuestConfig[] = [];
  for (const [name] of running.guests) {
    if (!desiredGuests.has(name)) {
      stopGuests.push(name);
      changes.push({ kind: 'guest', name, action: 'removed' });
    }
  }
  for (const to of desired.guests) {
    const from = running.guests.get(to.name);
    if (!from) {
      startGuests.push(to);
      changes.push({ kind: 'guest', name: to.name, action: 'added' });
      continue;
    }
    const why = guestRestartReason(from, to);
    if (why) {
      stopGuests.push(to.name);
      startGuests.push(to);
      changes.push({ kind: 'guest', name: to.name, action: 'restarted', reason: why });
    }
  }
  const restarted = new Set(startGuests.map((g) => g.name));

  // VIFs
  const removeVifs: string[] = [];
  const changeVifs: Step[] = [];
  const addVifs = new Set<string>();
  for (const [name, r] of running.vifs) {
    const want = desiredVifs.get(name);
    if (!want) {
      removeVifs.push(name);
      changes.push({ kind: 'vif', name, action: 'removed' });
      continue;
    }
    const keys = diffKeys(r.cfg, want.cfg, VIF_META_KEYS);
    let replaceWhy: string | null = null;
    if (want.guest !== r.guest) replaceWhy = `moves from guest ${r.guest} to ${want.guest}`;
    else if (restarted.has(want.guest)) replaceWhy = `its guest ${want.guest} restarts`;
    else {
      const fixed = keys.filter((k) => {
        const f = VIF_FIELDS.find((x) => x.key === k);
        return !f || (typeof f.live === 'function' ? !f.live(want.cfg, r.vif) : !f.live);
      });
      if (fixed.length) replaceWhy = `${fixed.join(', ')} cannot change on a running VIF`;
      else if (keys.includes('mac')) {
        // The new MAC still belongs to another running VIF (a swap, or a MAC handed over): an
        // in-place change would collide with it, so replace this VIF: removals run before changes
        // and additions, by which time the other VIF has let go of the MAC.
        const holder = [...running.vifs].find(([n, o]) => n !== name && o.cfg.device === want.cfg.device && o.cfg.segment === want.cfg.segment && o.cfg.mac === want.cfg.mac);
        if (holder) replaceWhy = `its new MAC is still VIF ${holder[0]}'s until that one changes`;
      }
    }
    if (replaceWhy) {
      removeVifs.push(name);
      addVifs.add(name);
      changes.push({ kind: 'vif', name, action: 'replaced', reason: replaceWhy, ...(keys.length ? { fields: fieldsOf(r.cfg, want.cfg, keys) } : {}) });
    } else if (keys.length) {
      changeVifs.push({ op: 'change-vif', vif: name, to: want.cfg, fields: keys });
      changes.push({ kind: 'vif', name, action: 'changed', fields: fieldsOf(r.cfg, want.cfg, keys) });
    }
  }
  for (const [name] of desiredVifs) {
    if (!running.vifs.has(name)) {
      addVifs.add(name);
      changes.push({ kind: 'vif', name, action: 'added' });
    }
  }
  // A guest that stops takes its remaining VIFs with it: remove them first, in order.
  for (const g of stopGuests) {
    for (const [name, r] of running.vifs) if (r.guest === g && !removeVifs.includes(name)) removeVifs.push(name);
  }

  for (const v of removeVifs) steps.push({ op: 'remove-vif', vif: v });
  for (const g of stopGuests) steps.push({ op: 'stop-guest', guest: g });
  for (const d of removedDevices) {
    steps.push({ op: 'remove-device', device: d });
    changes.push({ kind: 'device', name: d, action: 'removed' });
  }
  for (const d of addedDevices) {
    steps.push({ op: 'add-device', device: d });
    changes.push({ kind: 'device', name: d.name, action: 'added' });
  }
  for (const d of addedDevices) steps.push({ op: 'attach-uplink', device: d.name });
  steps.push(...uplinkSteps);
  for (const g of startGuests) steps.push({ op: 'start-guest', guest: g });
  // QoS admission (issue 6) is checked on every change: apply lowered guarantees before raised ones,
  // so a plan whose end state fits the capacity never passes through one that does not.
  const guaranteeDelta = (st: Step): number => {
    if (st.op !== 'change-vif') return 0;
    const from = running.vifs.get(st.vif)?.cfg.qos?.guaranteedBitsPerSec ?? 0;
    return (st.to.qos?.guaranteedBitsPerSec ?? 0) - from;
  };
  steps.push(...changeVifs.map((st, i) => ({ st, i, d: guaranteeDelta(st) })).sort((a, b) => (a.d < 0 ? 0 : 1) - (b.d < 0 ? 0 : 1) || a.i - b.i).map((x) => x.st));
  for (const g of desired.guests) {
    for (const v of g.vifs) if (addVifs.has(v.name)) steps.push({ op: 'add-vif', vif: v, guest: g.name });
  }
  for (const g of startGuests) steps.push({ op: 'start-message', guest: g.name });
  const order = { device: 0, guest: 1, vif: 2 };
  changes.sort((a, b) => order[a.kind] - order[b.kind]);
  return { steps, changes };
}

/** One line per step, for progress output and logs. */
export function describeStep(s: Step): string {
  switch (s.op) {
    case 'remove-vif': return `remove VIF ${s.vif}`;
    case 'stop-guest': return `stop guest ${s.guest}`;
    case 'remove-device': return `remove device ${s.device}`;
    case 'add-device': return `create device ${s.device.name}`;
    case 'attach-uplink': return `attach uplink of ${s.device}`;
    case 'change-uplink': return `change uplink of ${s.device} (${s.fields.join(', ')})`;
    case 'start-guest': return `start guest ${s.guest.name}`;
    case 'change-vif': return `change VIF ${s.vif} (${s.fields.join(', ')})`;
    case 'add-vif': return `create VIF ${s.vif.name} for guest ${s.guest}`;
    case 'start-message': return `start message to ${s.guest}`;
  }
}

/** One line per change, for logs and the CLI. */
export function describeChange(c: Change): string {
  const f = c.fields ? ` (${Object.entries(c.fields).map(([k, v]) => `${k} ${JSON.stringify(v.from)} -> ${JSON.stringify(v.to)}`).join(', ')})` : '';
  const why = c.reason ? `: ${c.reason}` : '';
  return `${c.kind} ${c.name} ${c.action}${f}${why}`;
}
