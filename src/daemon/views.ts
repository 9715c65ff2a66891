/** What the API returns for devices, uplinks, guests and VIFs: plain JSON built from the runtime. */
import { ENGINE_DROP_COUNTERS, VIF_DROP_COUNTERS } from '../layout/counters.js';
import type { Controller } from './controller.js';
import type { RunningVif } from './runtime.js';
import { guestKindOf, uplinkSummary } from './registry.js';
import { VmGuest } from './vm-guest.js';

export function vifView(ctl: Controller, r: RunningVif): Record<string, unknown> {
  const v = r.vif;
  const counters = v.counters();
  const dropReasons: Record<string, number> = {};
  for (const k of VIF_DROP_COUNTERS) if (counters[k]) dropReasons[k] = counters[k];
  return {
    name: v.id, guest: r.guest, device: v.device.name, state: v.state, ...(v.needsResetReason ? { needsResetReason: v.needsResetReason } : {}),
    mac: v.mac, mtu: v.mtu, bufferMtu: v.bufferMtu, segment: v.segment, queueSize: v.queueSize, engine: v.engine,
    linkUp: v.settings.linkUp, promiscuous: v.settings.promiscuous, multicast: v.settings.multicast, coalesce: v.settings.coalesce,
    // issue 4: the pcap file this VIF's traffic goes to (as the config gives it; relative to the config file's directory)
    capture: r.cfg.capture ?? null,
    // QoS (issue 6, docs/qos.md): the VIF's settings as the device holds them (null: none), and the
    // QoS counters that are not drops (the QoS drops are among dropReasons).
    qos: v.settings.qos && Object.keys(v.settings.qos).length ? v.settings.qos : null,
    qosEvents: { txHolds: counters.qos_tx_holds, rxQueued: counters.qos_rx_queued },
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
    kind: guestKindOf(cfg),
    module: cfg.module,
    // issue 5: a VM guest's vhost-user socket (resolved), whether QEMU is connected, and its settings
    ...(guest instanceof VmGuest ? { socket: guest.socket, connected: guest.connected, vm: cfg.vm } : {}),
    args: cfg.args,
    state: guest.running ? 'running' : guest.result !== undefined ? 'done' : guest.error !== null ? 'failed' : stoppedByUs ? 'stopped' : 'exited',
    ...(guest.error !== null ? { error: guest.error.split('\n')[0] } : {}),
    ...(guest.result !== undefined && guest instanceof VmGuest ? { result: guest.result } : {}),
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
      uplinkState: uplinkView(ctl, device.name),
    };
  });
}

/**
 * One device's uplink: its config, its counters (read now from shared memory), drops summed and by
 * reason, and for VXLAN the learned forwarding table's size (registry.ts UPLINK_KINDS), plus what
 * the uplink itself reports (a TAP interface's name, VXLAN source ports).
 */
export function uplinkView(ctl: Controller, deviceName: string): Record<string, unknown> | null {
  const d = ctl.runtime.devices.get(deviceName);
  if (!d) return null;
  const up = ctl.runtime.uplinks.get(deviceName);
  const counters = up?.counters() ?? {};
  const extra = up as unknown as { ifname?: string; sourcePorts?: number[] } | undefined;
  return {
    device: deviceName, ...d.cfg.uplink,
    attached: up !== undefined,
    ...(typeof extra?.ifname === 'string' ? { ifname: extra.ifname } : {}),
    ...(Array.isArray(extra?.sourcePorts) ? { sourcePorts: extra.sourcePorts } : {}),
    counters, ...uplinkSummary(d.cfg.uplink.kind, counters),
  };
}

export function uplinkList(ctl: Controller): Record<string, unknown>[] {
  return [...ctl.runtime.devices.keys()].map((n) => uplinkView(ctl, n)!);
}
