/**
 * /metrics in the Prometheus text format (prom-client). Every value is read at scrape time from the
 * devices' shared-memory counter rows (collect callbacks); no engine is messaged and nothing is
 * cached, except `svnic_engine_busy_ratio`, which is the busy fraction over the sampler's latest
 * interval (for a PromQL-free glance; rate(svnic_engine_busy_seconds_total) is the exact one).
 *
 * Directions are the guest's: `from_guest` = frames the guest sent (the device's tx_* counters),
 * `to_guest` = frames delivered to the guest (rx_*).
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { ENGINE_DROP_COUNTERS, VIF_DROP_COUNTERS } from '../layout/counters.js';
import type { Controller } from './controller.js';
import type { Sampler } from './sampler.js';
import { UPLINK_KINDS } from './registry.js';

const PROTO = ['proto_avail_jump', 'proto_bad_desc_index', 'proto_desc_loop', 'proto_indirect', 'proto_bad_features'] as const;

export function createMetrics(ctl: Controller, sampler: Sampler): Registry {
  const reg = new Registry();
  const rt = ctl.runtime;
  const vifLabels = ['device', 'guest', 'vif'];
  const liveVifs = () => [...rt.vifs.values()].filter((r) => r.vif.state !== 'destroyed');
  const vl = (r: ReturnType<typeof liveVifs>[number]) => ({ device: r.vif.device.name, guest: r.guest, vif: r.vif.id });

  /** A counter whose value is set from shared memory at scrape time. */
  const counter = (name: string, help: string, labelNames: string[], fill: (set: (labels: Record<string, string | number>, v: number) => void) => void) =>
    new Counter({
      name, help, labelNames, registers: [reg],
      collect() {
        this.reset();
        fill((labels, v) => this.inc(labels, v));
      },
    });
  const gauge = (name: string, help: string, labelNames: string[], fill: (set: (labels: Record<string, string | number>, v: number) => void) => void) =>
    new Gauge({
      name, help, labelNames, registers: [reg],
      collect() {
        this.reset();
        fill((labels, v) => this.set(labels, v));
      },
    });

  // ---- per VIF
  counter('svnic_vif_frames_total', 'Frames a VIF carried: from_guest = sent by the guest and taken by the device, to_guest = delivered to the guest.', [...vifLabels, 'direction'], (set) => {
    for (const r of liveVifs()) {
      const c = r.vif.counters();
      set({ ...vl(r), direction: 'from_guest' }, c.tx_frames);
      set({ ...vl(r), direction: 'to_guest' }, c.rx_frames);
    }
  });
  counter('svnic_vif_bytes_total', 'Bytes of Ethernet frames a VIF carried, by direction (see svnic_vif_frames_total).', [...vifLabels, 'direction'], (set) => {
    for (const r of liveVifs()) {
      const c = r.vif.counters();
      set({ ...vl(r), direction: 'from_guest' }, c.tx_bytes);
      set({ ...vl(r), direction: 'to_guest' }, c.rx_bytes);
    }
  });
  counter('svnic_vif_drops_total', 'Frames a VIF dropped, by reason (tx_* from the guest, rx_* toward it; docs/architecture.md lists the reasons).', [...vifLabels, 'reason'], (set) => {
    for (const r of liveVifs()) {
      const c = r.vif.counters();
      for (const k of VIF_DROP_COUNTERS) set({ ...vl(r), reason: k }, c[k]);
    }
  });
  counter('svnic_vif_protocol_errors_total', 'Driver protocol violations that put a VIF into NEEDS_RESET, by reason.', [...vifLabels, 'reason'], (set) => {
    for (const r of liveVifs()) {
      const c = r.vif.counters();
      for (const k of PROTO) set({ ...vl(r), reason: k }, c[k]);
    }
  });
  counter('svnic_vif_notifications_total', 'Guest kicks and interrupts: kicks (guest to device), irq_raised, irq_coalesced (held by coalescing).', [...vifLabels, 'kind'], (set) => {
    for (const r of liveVifs()) {
      const c = r.vif.counters();
      for (const k of ['kicks', 'irq_raised', 'irq_coalesced'] as const) set({ ...vl(r), kind: k }, c[k]);
    }
  });
  counter('svnic_vif_resets_total', 'Device resets of a VIF by its driver.', vifLabels, (set) => {
    for (const r of liveVifs()) set(vl(r), r.vif.counters().resets);
  });
  gauge('svnic_vif_up', '1 if the VIF is ready, 0 if it needs a reset by its driver.', vifLabels, (set) => {
    for (const r of liveVifs()) set(vl(r), r.vif.state === 'ready' ? 1 : 0);
  });
  gauge('svnic_vif_info', 'Always 1; the labels carry the VIF\'s MAC, MTU and segment.', [...vifLabels, 'mac', 'mtu', 'segment'], (set) => {
    for (const r of liveVifs()) set({ ...vl(r), mac: r.vif.mac, mtu: r.vif.mtu, segment: r.vif.segment }, 1);
  });

  // ---- per-VIF QoS (issue 6, docs/qos.md). The QoS drops (rx_qos_overflow, rx_qos_flushed) are
  // drop reasons of svnic_vif_drops_total; these are the events that are not drops, and the settings.
  counter('svnic_vif_qos_events_total', 'QoS events that are not drops: tx_holds (guest TX held by its limit), rx_queued (frames that waited for the guest RX limit).', [...vifLabels, 'event'], (set) => {
    for (const r of liveVifs()) {
      const c = r.vif.counters();
      set({ ...vl(r), event: 'tx_holds' }, c.qos_tx_holds);
      set({ ...vl(r), event: 'rx_queued' }, c.qos_rx_queued);
    }
  });
  const withQos = () => liveVifs().filter((r) => r.vif.settings.qos !== undefined && Object.keys(r.vif.settings.qos).length > 0);
  gauge('svnic_vif_qos_weight', 'DRR weight of a VIF with QoS settings (1..1000).', vifLabels, (set) => {
    for (const r of withQos()) set(vl(r), r.vif.settings.qos!.weight ?? 1);
  });
  gauge('svnic_vif_qos_priority', 'Strict priority class of a VIF with QoS settings (0 = none .. 7).', vifLabels, (set) => {
    for (const r of withQos()) set(vl(r), r.vif.settings.qos!.priority ?? 0);
  });
  gauge('svnic_vif_qos_limit_bytes_per_second', 'Bit-rate limit of a VIF in bytes/s (the config\'s bitsPerSec / 8) by direction (guest_tx, guest_rx); only limits that are set.', [...vifLabels, 'direction'], (set) => {
    for (const r of withQos()) {
      const q = r.vif.settings.qos!;
      if (q.guestTx?.bitsPerSec) set({ ...vl(r), direction: 'guest_tx' }, q.guestTx.bitsPerSec / 8);
      if (q.guestRx?.bitsPerSec) set({ ...vl(r), direction: 'guest_rx' }, q.guestRx.bitsPerSec / 8);
    }
  });
  gauge('svnic_vif_qos_guaranteed_bytes_per_second', 'Rate toward the uplink a VIF is guaranteed, in bytes/s (guaranteedBitsPerSec / 8; admission-controlled); only VIFs with a guarantee.', vifLabels, (set) => {
    for (const r of withQos()) if (r.vif.settings.qos!.guaranteedBitsPerSec) set(vl(r), r.vif.settings.qos!.guaranteedBitsPerSec! / 8);
  });
  gauge('svnic_device_qos_capacity_bytes_per_second', 'Uplink capacity a device shapes to and admits guarantees against, in bytes/s (capacityBitsPerSec / 8; 0: none set).', ['device'], (set) => {
    for (const [name, d] of rt.devices) set({ device: name }, (d.device.qos.capacityBitsPerSec ?? 0) / 8);
  });

  // ---- per engine
  const engines = function* () {
    for (const [name, d] of rt.devices) for (let i = 0; i < d.device.engineCount; i++) yield { labels: { device: name, engine: i }, c: d.device.engineCounters(i) };
  };
  const eng = ['device', 'engine'];
  counter('svnic_engine_busy_seconds_total', 'Time an engine spent on iterations that found work.', eng, (set) => {
    for (const e of engines()) set(e.labels, e.c.busy_ns / 1e9);
  });
  counter('svnic_engine_idle_seconds_total', 'Time an engine spent spinning without work or asleep.', eng, (set) => {
    for (const e of engines()) set(e.labels, e.c.idle_ns / 1e9);
  });
  gauge('svnic_engine_busy_ratio', 'Busy fraction (0..1) of an engine over the daemon\'s latest sampling interval.', eng, (set) => {
    for (const e of engines()) set(e.labels, sampler.engineBusy(String(e.labels.device), e.labels.engine));
  });
  for (const [k, help] of [
    ['loops', 'Engine loop iterations.'], ['sleeps', 'Times an engine went to sleep.'], ['wakeups', 'Times a sleeping engine was woken by a doorbell (not by its timeout).'],
    ['sweeps', 'Sweeps over all VIFs (finds work a lost doorbell hid).'], ['spurious_doorbells', 'Doorbells that found no work.'],
  ] as const) {
    counter(`svnic_engine_${k}_total`, help, eng, (set) => {
      for (const e of engines()) set(e.labels, e.c[k]);
    });
  }
  counter('svnic_engine_uplink_frames_total', 'Frames between an engine and the device\'s uplink (to_uplink, from_uplink).', [...eng, 'direction'], (set) => {
    for (const e of engines()) {
      set({ ...e.labels, direction: 'to_uplink' }, e.c.uplink_tx_frames);
      set({ ...e.labels, direction: 'from_uplink' }, e.c.uplink_rx_frames);
    }
  });
  counter('svnic_engine_uplink_bytes_total', 'Bytes between an engine and the device\'s uplink.', [...eng, 'direction'], (set) => {
    for (const e of engines()) {
      set({ ...e.labels, direction: 'to_uplink' }, e.c.uplink_tx_bytes);
      set({ ...e.labels, direction: 'from_uplink' }, e.c.uplink_rx_bytes);
    }
  });
  counter('svnic_engine_forwarded_frames_total', 'Frames passed between engines of a device (out, in).', [...eng, 'direction'], (set) => {
    for (const e of engines()) {
      set({ ...e.labels, direction: 'out' }, e.c.fwd_out_frames);
      set({ ...e.labels, direction: 'in' }, e.c.fwd_in_frames);
    }
  });
  counter('svnic_engine_flood_copies_total', 'Extra frame copies made for broadcast and multicast.', eng, (set) => {
    for (const e of engines()) set(e.labels, e.c.flood_copies);
  });
  counter('svnic_engine_drops_total', 'Frames an engine dropped that belong to no single VIF, by reason.', [...eng, 'reason'], (set) => {
    for (const e of engines()) for (const k of ENGINE_DROP_COUNTERS) set({ ...e.labels, reason: k }, e.c[k]);
  });

  // ---- per uplink (issue 4): what each kind's counters mean is in registry.ts UPLINK_KINDS
  const uplinks = function* () {
    for (const [name, d] of rt.devices) {
      const up = rt.uplinks.get(name);
      const spec = UPLINK_KINDS[d.cfg.uplink.kind]?.counters;
      if (up && spec) yield { labels: { device: name, kind: d.cfg.uplink.kind }, c: up.counters(), spec };
    }
  };
  const upl = ['device', 'kind'];
  gauge('svnic_uplink_info', 'Always 1 for each device\'s attached uplink; kind is null, echo, wire, vxlan or tap.', upl, (set) => {
    for (const u of uplinks()) set(u.labels, 1);
  });
  for (const [key, name, help] of [
    ['frames', 'svnic_uplink_frames_total', 'Frames an uplink moved: to_network = from the device onto the network, from_network = from the network into the device.'],
    ['bytes', 'svnic_uplink_bytes_total', 'Bytes of Ethernet frames an uplink moved, by direction (see svnic_uplink_frames_total).'],
    ['packets', 'svnic_uplink_packets_total', 'Outer packets (VXLAN: UDP datagrams; a flood is one per remote VTEP), by direction.'],
  ] as const) {
    counter(name, help, [...upl, 'direction'], (set) => {
      for (const u of uplinks()) {
        const m = u.spec[key];
        if (!m) continue;
        set({ ...u.labels, direction: 'to_network' }, u.c[m.toNetwork] ?? 0);
        set({ ...u.labels, direction: 'from_network' }, u.c[m.fromNetwork] ?? 0);
      }
    });
  }
  counter('svnic_uplink_drops_total', 'Frames or packets an uplink dropped, by reason (docs/uplinks.md: tx_* toward the network, rx_* from it).', [...upl, 'reason'], (set) => {
    for (const u of uplinks()) for (const k of u.spec.drops) set({ ...u.labels, reason: k }, u.c[k] ?? 0);
  });
  counter('svnic_uplink_fdb_events_total', 'Learned forwarding-table events of a VXLAN uplink: learned, learn_moved, learn_full (refused: table full), aged_out.', [...upl, 'event'], (set) => {
    for (const u of uplinks()) for (const k of u.spec.fdbEvents ?? []) set({ ...u.labels, event: k }, u.c[k] ?? 0);
  });
  gauge('svnic_uplink_fdb_entries', 'MACs a VXLAN uplink has learned (all VNIs) and not yet aged out.', upl, (set) => {
    for (const u of uplinks()) if (u.spec.fdbEntries) set(u.labels, u.spec.fdbEntries(u.c));
  });

  // ---- the daemon
  gauge('svnic_daemon_config_generation', 'Generation of the desired state (increases with every applied change).', [], (set) => set({}, ctl.generation));
  counter('svnic_daemon_changes_total', 'Config changes: applied, rejected (invalid; nothing changed), failed (rolled back).', ['result'], (set) => {
    set({ result: 'applied' }, ctl.stats.applied);
    set({ result: 'rejected' }, ctl.stats.rejected);
    set({ result: 'failed' }, ctl.stats.failed);
  });
  gauge('svnic_daemon_state_save_failures', 'Consecutive failures to save the desired state (0: the saved state is current).', [], (set) => set({}, ctl.stats.persistFailures));
  gauge('svnic_daemon_vifs', 'VIFs that exist.', [], (set) => set({}, liveVifs().length));
  gauge('svnic_daemon_guests', 'Guests by state.', ['state'], (set) => {
    let running = 0;
    let exited = 0;
    for (const g of rt.guests.values()) g.guest.running ? running++ : exited++;
    set({ state: 'running' }, running);
    set({ state: 'exited' }, exited);
  });
  return reg;
}
