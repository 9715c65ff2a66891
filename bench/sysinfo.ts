/**
 * The machine a benchmark ran on, and how busy the rest of the machine was while it ran: this
 * machine is shared, so every trial records the CPU used by other processes (from /proc/stat,
 * minus this process's own CPU time) to show how noisy its numbers may be.
 */
import os from 'node:os';
import { readFileSync } from 'node:fs';

export interface MachineInfo {
  cpuModel: string;
  cpus: number;
  platform: string;
  osRelease: string;
  totalMemGiB: number;
  node: string;
  v8: string;
  loadavgAtStart: number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    platform: `${os.platform()} ${os.arch()}`,
    osRelease: os.release(),
    totalMemGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    v8: process.versions.v8,
    loadavgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

interface CpuSample {
  /** Busy CPU seconds of the whole machine (all cores), or NaN without /proc/stat. */
  machineBusy: number;
  /** CPU seconds used by this process (all its threads). */
  self: number;
  at: number;
}

const USER_HZ = 100;

function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is inside user.
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
    return busy / USER_HZ;
  } catch {
    return NaN;
  }
}

export function cpuSample(): CpuSample {
  const u = process.cpuUsage();
  return { machineBusy: machineBusySeconds(), self: (u.user + u.system) / 1e6, at: performance.now() };
}

/** Cores used by this process and by everything else between two samples. */
export function cpuBetween(a: CpuSample, b: CpuSample): { selfCores: number; otherCores: number } {
  const wall = (b.at - a.at) / 1000;
  const self = (b.self - a.self) / wall;
  const busy = (b.machineBusy - a.machineBusy) / wall;
  return { selfCores: round2(self), otherCores: Number.isFinite(busy) ? round2(Math.max(0, busy - self)) : NaN };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
