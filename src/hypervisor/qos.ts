/**
 * QoS as the control plane sees it: the settings users give (per VIF and per device), their
 * validation, admission control for guarantees, and their translation into rows of the device's
 * QoS table (layout/qos.ts), which the engines read without messages.
 */
import { SvnicError } from './errors.js';
import { DEFAULT_PRIORITY_SHARE, DEFAULT_QUANTUM, emptyQosRow, type QosPort, type QosRow } from '../layout/qos.js';

/** A rate limit in one direction. Leave a field out (or 0) for "no limit" / "default burst". */
export interface RateLimit {
  bitsPerSec?: number;
  framesPerSec?: number;
  /** Bytes that may go at once after an idle period (default: 5 ms at the rate, at least 16 KiB). */
  burstBytes?: number;
  /** Frames that may go at once (default: 5 ms at the rate, at least 32). */
  burstFrames?: number;
}

export interface VifQos {
  /** Share of contended capacity relative to other VIFs (deficit round robin), 1..1000; default 1. */
  weight?: number;
  /** Strict priority class 0..7 (0 = none, the default; higher is served first, bounded). */
  priority?: number;
  /** Limit on what the guest sends (over it: the device stops taking descriptors). */
  guestTx?: RateLimit;
  /** Limit on what the guest receives (over it: frames wait in a bounded queue). */
  guestRx?: RateLimit;
  /** Rate toward the uplink this VIF is guaranteed (admission-controlled against the capacity). */
  guaranteedBitsPerSec?: number;
}

export interface DeviceQos {
  /** Uplink capacity in bits/s: the port is shaped to it and guarantees are admitted against it. */
  capacityBitsPerSec?: number;
  /** Most of the capacity the priority classes may take together (0..1, default 0.5). */
  priorityShare?: number;
  /** DRR bytes per unit of weight and turn (default 6072: four 1518 B frames). */
  quantumBytes?: number;
}

const MAX_RATE = 1e12; // 1 Tbit/s: anything above is a typo
const MAX_BURST = 1 << 30;

function rate(v: unknown, what: string, max = MAX_RATE): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) {
    throw new SvnicError('BAD_QOS', `${what} must be a number in 0..${max} (0 = no limit), got ${JSON.stringify(v)}`);
  }
  return v;
}

function limit(l: RateLimit | undefined, what: string): [number, number, number, number] {
  if (l === undefined) return [0, 0, 0, 0];
  if (typeof l !== 'object' || l === null) throw new SvnicError('BAD_QOS', `${what} must be an object like { bitsPerSec: 100e6 }`);
  for (const k of Object.keys(l)) {
    if (!['bitsPerSec', 'framesPerSec', 'burstBytes', 'burstFrames'].includes(k)) {
      throw new SvnicError('BAD_QOS', `${what}.${k} is not a rate-limit field; use bitsPerSec, framesPerSec, burstBytes, burstFrames`);
    }
  }
  return [rate(l.bitsPerSec, `${what}.bitsPerSec`), rate(l.burstBytes, `${what}.burstBytes`, MAX_BURST),
    rate(l.framesPerSec, `${what}.framesPerSec`, 1e9), rate(l.burstFrames, `${what}.burstFrames`, MAX_BURST)];
}

/** Validate VIF QoS settings and turn them into a QoS table row. Throws BAD_QOS. */
export function vifQosRow(q: VifQos | undefined, vif: string): QosRow {
  const row = emptyQosRow();
  if (q === undefined) return row;
  if (typeof q !== 'object' || q === null) throw new SvnicError('BAD_QOS', `qos of VIF "${vif}" must be an object`);
  for (const k of Object.keys(q)) {
    if (!['weight', 'priority', 'guestTx', 'guestRx', 'guaranteedBitsPerSec'].includes(k)) {
      throw new SvnicError('BAD_QOS', `qos.${k} of VIF "${vif}" is not a QoS setting; use weight, priority, guestTx, guestRx, guaranteedBitsPerSec`);
    }
  }
  const w = q.weight ?? 1;
  if (typeof w !== 'number' || !Number.isFinite(w) || w < 1 || w > 1000) throw new SvnicError('BAD_QOS', `qos.weight of VIF "${vif}" must be a number in 1..1000, got ${JSON.stringify(w)}`);
  const p = q.priority ?? 0;
  if (!Number.isInteger(p) || p < 0 || p > 7) throw new SvnicError('BAD_QOS', `qos.priority of VIF "${vif}" must be an integer in 0..7, got ${JSON.stringify(p)}`);
  [row.txBps, row.txBurstBytes, row.txPps, row.txBurstFrames] = limit(q.guestTx, `qos.guestTx of VIF "${vif}"`);
  [row.rxBps, row.rxBurstBytes, row.rxPps, row.rxBurstFrames] = limit(q.guestRx, `qos.guestRx of VIF "${vif}"`);
  row.minBps = rate(q.guaranteedBitsPerSec, `qos.guaranteedBitsPerSec of VIF "${vif}"`);
  if (row.minBps > 0 && row.txBps > 0 && row.minBps > row.txBps) {
    throw new SvnicError('BAD_QOS', `VIF "${vif}" is guaranteed ${fmtRate(row.minBps)} but limited to ${fmtRate(row.txBps)} on guest TX; lower the guarantee or raise the limit`);
  }
  row.weight = w;
  row.priority = p;
  row.enabled = w !== 1 || p !== 0 || row.txBps + row.txPps + row.rxBps + row.rxPps + row.minBps > 0;
  return row;
}

export function devicePort(q: DeviceQos | undefined): QosPort {
  const port: QosPort = { capacityBps: 0, priorityShare: DEFAULT_PRIORITY_SHARE, quantum: DEFAULT_QUANTUM };
  if (q === undefined) return port;
  for (const k of Object.keys(q)) {
    if (!['capacityBitsPerSec', 'priorityShare', 'quantumBytes'].includes(k)) {
      throw new SvnicError('BAD_QOS', `device qos.${k} is not a setting; use capacityBitsPerSec, priorityShare, quantumBytes`);
    }
  }
  port.capacityBps = rate(q.capacityBitsPerSec, 'device qos.capacityBitsPerSec');
  const share = q.priorityShare ?? DEFAULT_PRIORITY_SHARE;
  if (typeof share !== 'number' || !(share > 0 && share <= 1)) throw new SvnicError('BAD_QOS', `device qos.priorityShare must be in (0, 1], got ${JSON.stringify(share)}`);
  port.priorityShare = share;
  const quantum = q.quantumBytes ?? DEFAULT_QUANTUM;
  if (!Number.isInteger(quantum) || quantum < 64 || quantum > 1 << 20) throw new SvnicError('BAD_QOS', `device qos.quantumBytes must be an integer in 64..1048576, got ${JSON.stringify(quantum)}`);
  port.quantum = quantum;
  return port;
}

export function fmtRate(bps: number): string {
  if (bps >= 1e9) return `${+(bps / 1e9).toFixed(3)} Gbit/s`;
  if (bps >= 1e6) return `${+(bps / 1e6).toFixed(3)} Mbit/s`;
  if (bps >= 1e3) return `${+(bps / 1e3).toFixed(3)} kbit/s`;
  return `${bps} bit/s`;
}

export interface Guarantee {
  vif: string;
  bps: number;
}

/**
 * Admission control: the guarantees of all VIFs of a device must fit in its uplink capacity.
 * (Engines share the uplink so that each gets at least the guarantees of its VIFs that are
 * sending: device/qos/engine-qos.ts.) Throws QOS_OVERCOMMIT naming the VIFs, or
 * QOS_NO_CAPACITY when a guarantee is asked of a device without a capacity.
 */
export function admit(device: string, port: QosPort, all: Guarantee[]): void {
  const asked = all.filter((g) => g.bps > 0);
  if (asked.length === 0) return;
  if (port.capacityBps <= 0) {
    throw new SvnicError('QOS_NO_CAPACITY', `device ${device} has no uplink capacity configured, so it cannot guarantee rates (VIFs ${asked.map((g) => `"${g.vif}"`).join(', ')}); set the device's qos.capacityBitsPerSec`);
  }
  const sum = asked.reduce((s, g) => s + g.bps, 0);
  if (sum > port.capacityBps * (1 + 1e-9)) {
    throw new SvnicError('QOS_OVERCOMMIT', `guaranteed rates on device ${device} would add up to ${fmtRate(sum)}, more than its uplink capacity ${fmtRate(port.capacityBps)}: ${asked.map((g) => `"${g.vif}" ${fmtRate(g.bps)}`).join(', ')}; lower a guarantee or raise qos.capacityBitsPerSec`);
  }
}
