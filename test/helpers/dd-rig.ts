/**
 * Test rig for the driver-domain baseline, in-process and synchronous: one device engine (Rig)
 * with two VIFs, the driver domain's NIC (slot 0: promiscuous, spoofCheck off) and a peer host
 * (slot 1, a real VirtioNetDriver), plus a DriverDomainLoop whose netifs tests add with real or
 * mock drivers. step() runs the driver domain and the engine alternately, like two threads would.
 */
import { Rig } from './mock-driver.js';
import { DriverDomainLoop } from '../../src/baseline/driver-domain-loop.js';
import type { NetbackEvent } from '../../src/baseline/netback.js';
import { createWakePage } from '../../src/layout/doorbell.js';
import { createDriverDomainCounters, readBridgeCounters, type BridgeCounter } from '../../src/layout/driver-domain.js';
import { readVifCounters, readEngineCounters, unaccountedFrames, type VifCounter, type EngineCounter } from '../../src/layout/counters.js';
import { createVifMemory, DEVICE_FEATURES } from '../../src/hypervisor/device.js';
import { VirtioNetDriver } from '../../src/guest/driver.js';

export const NIC_MAC = '02:00:00:00:dd:00';
export const PEER_MAC = '02:00:00:00:ee:01';

export class DdRig {
  readonly rig = new Rig({ maxVifs: 8 });
  readonly maxNetifs = 8;
  readonly evtchn = createWakePage(8);
  readonly counterSab = createDriverDomainCounters(8);
  readonly f64 = new Float64Array(this.counterSab);
  readonly loop: DriverDomainLoop;
  readonly peer: VirtioNetDriver;
  readonly events: NetbackEvent[] = [];
  now = 0;

  constructor(opts: { fdbCapacity?: number; fdbAgeMs?: number; nicQueueSize?: number } = {}) {
    const nicSab = this.rig.addVif(0, NIC_MAC, { queueSize: opts.nicQueueSize ?? 64, promiscuous: true, spoofCheck: false, interruptWake: this.evtchn });
    const peerSab = this.rig.addVif(1, PEER_MAC, { queueSize: 64 });
    this.peer = new VirtioNetDriver({ vifId: 'peer', vif: peerSab, doorbell: this.rig.doorbell });
    this.loop = new DriverDomainLoop({
      maxNetifs: this.maxNetifs, evtchn: this.evtchn, control: createWakePage(32), counters: this.counterSab,
      nic: { vifId: 'nic', vif: nicSab, doorbell: this.rig.doorbell },
      spinUs: 0, sweepMs: 100, batch: 64, fdbCapacity: opts.fdbCapacity ?? 64, fdbAgeMs: opts.fdbAgeMs ?? 300_000,
    });
    this.loop.onEvent = (e) => this.events.push(e);
    this.step(3);
  }

  /** Allocate a netif's memory as the control plane does and give it to netback. */
  addNetif(slot: number, mac: string, queueSize = 16): SharedArrayBuffer {
    const sab = createVifMemory(slot, queueSize, 1500, mac);
    this.loop.addNetif({
      slot, sab, queueSize, mac, mtu: 1500, segment: 0, linkUp: true, promiscuous: false, multicast: [],
      coalesce: { frames: 1, usecs: 0 }, deviceFeatures: DEVICE_FEATURES,
    });
    return sab;
  }

  /** Driver domain, then engine, `n` times (each sees the other's output on the next turn). */
  step(n = 2): void {
    for (let i = 0; i < n; i++) {
      this.now += 1;
      this.loop.step(this.now);
      this.rig.step();
    }
  }

  netif(slot: number): Record<VifCounter, number> {
    return readVifCounters(this.f64, slot);
  }
  dd(): Record<EngineCounter, number> {
    return readEngineCounters(this.f64, this.maxNetifs, 0);
  }
  bridge(): Record<BridgeCounter, number> {
    this.loop.bridge.publishFdbCounters();
    return readBridgeCounters(this.f64, this.maxNetifs);
  }
  /** The bridge's conservation law (0 = every frame delivered or counted). */
  unaccounted(): number {
    return unaccountedFrames(this.f64, this.maxNetifs, 1);
  }
}
