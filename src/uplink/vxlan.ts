/**
 * `vxlan`: the device's uplink is a VXLAN tunnel endpoint (RFC 7348) over UDP, so svnic's segments
 * extend to Linux `vxlan` devices, Open vSwitch and hardware VTEPs on other machines. Each VNI maps
 * to one segment of the device; a VIF joins a VNI by being in its segment.
 *
 * The data path runs in a worker of its own (vxlan-worker.ts): it owns the UDP sockets and its
 * event loop, so the engines only ever see frame rings and the control plane (main thread) stays
 * free. This class is the control plane's handle: validation, start, counters, FDB, capture, stop.
 */
import { Worker } from 'node:worker_threads';
import { isIPv4, isIPv6 } from 'node:net';
import type { Device } from '../hypervisor/device.js';
import { SvnicError } from '../hypervisor/errors.js';
import { MAX_SEGMENT } from '../device/switch.js';
import { createUplinkCounters, readUplinkCounters } from '../layout/uplink-counters.js';
import { VXLAN_COUNTERS, VXLAN_PORT, MAX_VNI, OUTER_IPV4, OUTER_IPV6 } from './vxlan-codec.js';
import { attachUplinkRings, detachUplinkRings, makeUplinkRings } from './rings.js';
import type { VxlanCommand, VxlanWorkerData } from './vxlan-worker.js';
import type { Uplink } from './uplink.js';

export interface VxlanVni {
  vni: number;
  /** The device segment whose VIFs are in this VNI (default 0). */
  segment?: number;
  /** Remote VTEPs (IP literals) that get this VNI's floods: broadcast, multicast, unknown unicast. */
  remotes?: string[];
}

export interface VxlanOptions {
  /** Local address to bind (default 0.0.0.0; an IPv6 address makes the tunnel IPv6). */
  local?: string;
  /** Local UDP port to receive on (default 4789, RFC 7348, 5). */
  port?: number;
  /** UDP destination port of sent packets (default 4789). */
  dstPort?: number;
  vnis: VxlanVni[];
  /** MTU of the path to remote VTEPs: a frame whose outer packet would exceed it is counted (tx_oversize), not sent. Default 1500. */
  pathMtu?: number;
  /** Forget a learned MAC after this long without traffic from it (default 300 s, as Linux). */
  ageingSec?: number;
  /** Learn inner source MACs from received packets (default true). */
  learn?: boolean;
  /** Learned MACs per VNI at most (default 4096; beyond: learn_full). */
  maxLearned?: number;
  /** UDP sockets (source ports in 49152-65535) the flow hash spreads sends over (default 4). */
  sourcePorts?: number;
}

export interface VxlanFdbEntry {
  vni: number;
  mac: string;
  vtep: string;
  ageMs: number;
}

function bad(msg: string): never {
  throw new SvnicError('BAD_OPTION', `vxlan: ${msg}`);
}

/** Check options and fill defaults; throws BAD_OPTION with what to change. */
export function vxlanSettings(o: VxlanOptions): Omit<VxlanWorkerData, 'rings' | 'counters' | 'batch'> {
  const local = o.local ?? '0.0.0.0';
  const ipv6 = isIPv6(local);
  if (!ipv6 && !isIPv4(local)) bad(`local must be an IPv4 or IPv6 address, got "${local}"`);
  const portOk = (p: number | undefined, name: string): number => {
    const v = p ?? VXLAN_PORT;
    if (!Number.isInteger(v) || v < 1 || v > 65535) bad(`${name} must be a UDP port in 1..65535, got ${p}`);
    return v;
  };
  const pathMtu = o.pathMtu ?? 1500;
  const outer = ipv6 ? OUTER_IPV6 : OUTER_IPV4;
  if (!Number.isInteger(pathMtu) || pathMtu < outer + 60 || pathMtu > 65535) bad(`pathMtu must be an integer in ${outer + 60}..65535, got ${pathMtu}`);
  const ageingSec = o.ageingSec ?? 300;
  if (!Number.isFinite(ageingSec) || ageingSec <= 0 || ageingSec > 86400) bad(`ageingSec must be in (0, 86400], got ${ageingSec}`);
  const maxLearned = o.maxLearned ?? 4096;
  if (!Number.isInteger(maxLearned) || maxLearned < 0 || maxLearned > 1_000_000) bad(`maxLearned must be an integer in 0..1000000, got ${maxLearned}`);
  const sourcePorts = o.sourcePorts ?? 4;
  if (!Number.isInteger(sourcePorts) || sourcePorts < 1 || sourcePorts > 64) bad(`sourcePorts must be an integer in 1..64, got ${sourcePorts}`);
  if (!Array.isArray(o.vnis) || o.vnis.length === 0) bad('give at least one VNI, e.g. vnis: [{ vni: 42, segment: 0, remotes: [192.0.2.2] }]');
  const seenVni = new Set<number>();
  const seenSeg = new Set<number>();
  const vnis = o.vnis.map((v) => {
    if (!Number.isInteger(v.vni) || v.vni < 0 || v.vni > MAX_VNI) bad(`vni must be an integer in 0..${MAX_VNI}, got ${v.vni}`);
    const segment = v.segment ?? 0;
    if (!Number.isInteger(segment) || segment < 0 || segment > MAX_SEGMENT) bad(`segment of VNI ${v.vni} must be in 0..${MAX_SEGMENT}, got ${segment}`);
    if (seenVni.has(v.vni)) bad(`VNI ${v.vni} is listed twice`);
    if (seenSeg.has(segment)) bad(`segment ${segment} is mapped to two VNIs; each segment carries one VNI`);
    seenVni.add(v.vni);
    seenSeg.add(segment);
    const remotes = v.remotes ?? [];
    for (const r of remotes) {
      if (ipv6 ? !isIPv6(r) : !isIPv4(r)) bad(`remote "${r}" of VNI ${v.vni} must be an ${ipv6 ? 'IPv6' : 'IPv4'} address like local (${local})`);
    }
    return { vni: v.vni, segment, remotes: [...new Set(remotes)] };
  });
  return {
    local, ipv6, port: portOk(o.port, 'port'), dstPort: portOk(o.dstPort, 'dstPort'), pathMtu, ageingMs: ageingSec * 1000,
    maxLearned, learn: o.learn ?? true, sourcePorts, vnis,
  };
}

export class VxlanUplink implements Uplink {
  readonly kind = 'vxlan';
  private seq = 0;
  private readonly pending = new Map<number, (m: { error?: string; fdb?: VxlanFdbEntry[] }) => void>();
  private stopped: Promise<void> | null = null;

  private constructor(
    readonly device: Device,
    private readonly worker: Worker,
    private readonly countersSab: SharedArrayBuffer,
    /** UDP source ports the worker bound (the flow hash picks one per frame). */
    readonly sourcePorts: number[],
    readonly settings: ReturnType<typeof vxlanSettings>,
  ) {
    worker.on('message', (m: { type: string; id?: number; error?: string; fdb?: VxlanFdbEntry[] }) => {
      if (m.type === 'reply' && m.id !== undefined) {
        this.pending.get(m.id)?.(m);
        this.pending.delete(m.id);
      }
    });
    device.once('stopped', () => void this.stop()); // its worker must not outlive the device
    worker.on('exit', () => {
      for (const r of this.pending.values()) r({ error: 'the VXLAN worker exited' });
      this.pending.clear();
    });
  }

  static async attach(dev: Device, opts: VxlanOptions): Promise<VxlanUplink> {
    const settings = vxlanSettings(opts);
    const rings = makeUplinkRings(dev);
    const counters = createUplinkCounters(VXLAN_COUNTERS);
    const data: VxlanWorkerData = { ...settings, rings, counters, batch: 32 };
    const worker = new Worker(new URL('./vxlan-worker.js', import.meta.url), { workerData: data, name: `svnic-vxlan-${dev.name}` });
    const first = await new Promise<{ type: string; message?: string; code?: string; sourcePorts?: number[] }>((resolve) => {
      worker.once('message', resolve);
      worker.once('error', (e) => resolve({ type: 'error', message: e.message }));
    });
    if (first.type !== 'ready') {
      await worker.terminate();
      throw new SvnicError('UPLINK_FAILED', `vxlan: cannot open UDP ${settings.local}:${settings.port}: ${first.message}` +
        (first.code === 'EADDRINUSE' ? ' (another VTEP, e.g. a Linux vxlan device or another svnic, uses this port here; set `port`)' : ''));
    }
    try {
      await attachUplinkRings(dev, rings, 'vxlan');
    } catch (e) {
      await worker.terminate();
      throw e;
    }
    return new VxlanUplink(dev, worker, counters, first.sourcePorts ?? [], settings);
  }

  private call(cmd: VxlanCommand): Promise<{ error?: string; fdb?: VxlanFdbEntry[] }> {
    if (this.stopped) return Promise.resolve({ error: 'the VXLAN uplink is stopped' });
    const id = this.seq++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.worker.postMessage({ ...cmd, id });
    });
  }

  counters(): Record<string, number> {
    return readUplinkCounters(this.countersSab, VXLAN_COUNTERS);
  }

  /** MACs learned from the network, per VNI, with the VTEP behind each. */
  async fdb(): Promise<VxlanFdbEntry[]> {
    const r = await this.call({ op: 'fdb' });
    return r.fdb ?? [];
  }

  /**
   * Write the uplink's traffic to a pcap file (null: stop). `inner`: the Ethernet frames as they
   * enter and leave the device; `outer`: the VXLAN/UDP datagrams (outer IP header rebuilt).
   */
  async capture(path: string | null, mode: 'inner' | 'outer' = 'inner'): Promise<void> {
    const r = await this.call({ op: 'capture', path, mode });
    if (r.error) throw new SvnicError('BAD_OPTION', `capture: ${r.error}`);
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await detachUplinkRings(this.device);
      const id = this.seq++;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        this.pending.set(id, () => {
          clearTimeout(t);
          resolve();
        });
        this.worker.postMessage({ op: 'stop', id });
      });
      await this.worker.terminate();
    })();
    return this.stopped;
  }
}
