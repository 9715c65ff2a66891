/** What the API returns for devices, uplinks, guests and VIFs: plain JSON built from the runtime. */
import { ENGINE_DROP_COUNTERS, VIF_DROP_COUNTERS } from '../layout/counters.js';
import type { Controller } from './controller.js';
import type { RunningVif } from './runtime.js';

export function vifView(ctl: Controller, r: RunningVif): Record<string, unknown> {
  const v = r.vif;
  const counters = v.counters();
  const dropReasons: Record<string, number> = {};
  for (const k of VIF_DROP_COUNTERS) if (counters[k]) dropReasons[k] = counters[k];
  return {
    name: v.id, guest: r.guest, device: v.device.name, state: v.state, ...(v.needsResetReason ? { needsResetReason: v.needsResetReason } : {}),
    mac: v.mac, mtu: v.mtu, bufferMtu: v.bufferMtu, segment: v.segment, queueSize: v.queueSize, engine: v.engine,
    linkUp: v.settings.linkUp, promiscuous: v.settings.promiscuous, multicast: v.settings.multicast, coalesce: v.settings.coalesce,
    // QoS (issue 6) is not in this branch: null until the QoS fields land (registry.ts VIF_FIELDS).
    qos: (r.cfg as unknown as { qos?: unknown }).qos ?? null,
    counters, drops: VIF_DROP_COUNTERS.reduce((s, k) => s + counters[k], 0), dropReasons,
    desired: ctl.vifConfig(v.id) !== null,
  };
}

export function vifList(ctl: Controller): Record<string, unknown>[] {
  return [...ctl.runtime.vifs.values()].map((r) => vifView(ctl, r));
}

export function guestList(ctl: Controller): Record<string, unknown>[] {
  return [...ctl.runtime.guests.values()].map(({ cfg, guest, stoppedByUs }) => ({
    name: guest.id,
    kind: (cfg as unknown as { kind?: string }).kind ?? 'isolate',
    module: cfg.module,
    args: cfg.args,
    state: guest.running ? 'running' : guest.result !== undefined ? 'done' : guest.error !== null ? 'failed' : stoppedByUs ? 'stopped' : 'exited',
    ...(guest.error !== null ? { error: guest.error.split('\n')[0] } : {}),
    vifs: [...ctl.runtime.vifs.values()].filter((v) => v.guest === guest.id && v.vif.state !== 'destroyed').map((v) => v.vif.id),
  }));
}

export function deviceList(ctl: Controller): Record<string, unknown>[] {
  return [...ctl.runtime.devices.values()].map(({ cfg, device }) => {
    const engines = Array.from({ length: device.engineCount }, (_, i) => ({ engine: i, counters: device.engineCounters(i) }));
    const counters = device.deviceCounters();
    const dropReasons: Record<string, number> = {};
    for (const k of ENGINE_DROP_COUNTERS) if (counters[k]) dropReasons[k] = counters[k];
    const { path: _path, ...settings } = cfg;
    return {
      ...settings,
      vifs: device.vifs().length,
      counters, drops: ENGINE_DROP_COUNTERS.reduce((s, k) => s + counters[k], 0), dropReasons,
      unaccounted: device.unaccounted(),
      engineCounters: engines,
    };
  });
}

export function uplinkList(ctl: Controller): Record<string, unknown>[] {
  return [...ctl.runtime.devices.values()].map(({ cfg, device }) => ({
    device: device.name, ...cfg.uplink, counters: ctl.runtime.uplinks.get(device.name)?.counters() ?? {},
  }));
}
