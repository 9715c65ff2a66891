/**
 * `svnic bench vm`: two real Linux VMs (QEMU/TCG) talking through
 *   svnic          svnic vhost-user VIFs on one device engine (default spin budget, 100 µs)
 *   svnic-nospin   the same with spinUs 0 (the engine sleeps at once when idle)
 *   svnic-offload  svnic with checksum/TSO offloads negotiated (GSO frames passed VM to VM)
 *   stream         QEMU's own -netdev stream over a unix socket (VM b connects to VM a)
 *   tap-bridge     a TAP device per VM on a Linux bridge, inside a namespace the benchmark
 *                  creates and deletes (QEMU runs in it via `ip netns exec`)
 * Each round boots fresh VMs for every path, in turn (so slow drift of the machine's load hits
 * all paths alike), waits until b reaches a, then measures ping RTT (b -> a, first reply left out)
 * and iperf3 TCP throughput b -> a, and reports medians over rounds and ratios to svnic.
 * Under TCG the guests' emulated CPUs are the bottleneck; see docs/vm.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Device } from '../src/hypervisor/device.js';
import { KickRelay } from '../src/vhost-user/kick-relay.js';
import { VhostUserPort } from '../src/vhost-user/port.js';
import { ensureImage, type VmImage } from '../src/vm/image.js';
import { Vm, iperfReceiverMbits, pingRtts, type VmNet } from '../src/vm/qemu.js';
import { machineInfo } from './sysinfo.js';
import { table } from '../src/cli/table.js';

export type VmPath = 'svnic' | 'svnic-nospin' | 'svnic-offload' | 'stream' | 'tap-bridge';
export const VM_PATHS: VmPath[] = ['svnic', 'svnic-nospin', 'svnic-offload', 'stream', 'tap-bridge'];

export interface VmBenchOptions {
  rounds?: number;
  seconds?: number;
  pings?: number;
  paths?: VmPath[];
  json?: string;
  command?: string;
}

interface Trial { path: VmPath; round: number; mbit: number; rttMs: number; error: string }

const MAC_A = '52:54:00:05:0b:01';
const MAC_B = '52:54:00:05:0b:02';
const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function trial(path: VmPath, image: VmImage, seconds: number, pings: number): Promise<Omit<Trial, 'path' | 'round'>> {
  const id = `${process.pid}-${Date.now() % 100000}`;
  const cleanups: (() => Promise<void> | void)[] = [];
  const vms: Vm[] = [];
  try {
    let netA: VmNet;
    let netB: VmNet;
    let wrap: string[] | undefined;
    if (path.startsWith('svnic')) {
      const offloads = path === 'svnic-offload';
      const device = await Device.create({ engines: 1, spinUs: path === 'svnic-nospin' ? 0 : 100 });
      const relay = new KickRelay();
      cleanups.push(() => device.stop(), () => relay.stop());
      const pa = new VhostUserPort(device, await device.createVif({ mac: MAC_A }), relay, { socket: join(tmpdir(), `sv5b-${id}-a.sock`), offloads });
      const pb = new VhostUserPort(device, await device.createVif({ mac: MAC_B }), relay, { socket: join(tmpdir(), `sv5b-${id}-b.sock`), offloads });
      cleanups.push(() => pb.close(), () => pa.close());
      netA = { kind: 'vhost-user', socket: pa.socket };
      netB = { kind: 'vhost-user', socket: pb.socket };
    } else if (path === 'stream') {
      const sock = join(tmpdir(), `sv5b-${id}-stream.sock`);
      netA = { kind: 'stream', socket: sock, server: true };
      netB = { kind: 'stream', socket: sock, server: false };
    } else {
      const ns = `sv5-${process.pid}`;
      const ip = (...a: string[]) => execFileSync('ip', ['-n', ns, ...a], { stdio: 'pipe' });
      execFileSync('ip', ['netns', 'add', ns], { stdio: 'pipe' });
      cleanups.push(() => void execFileSync('ip', ['netns', 'del', ns], { stdio: 'pipe' }));
      ip('link', 'add', 'sv5br', 'type', 'bridge');
      for (const t of ['sv5ta', 'sv5tb']) {
        ip('tuntap', 'add', 'dev', t, 'mode', 'tap');
        ip('link', 'set', t, 'master', 'sv5br');
        ip('link', 'set', t, 'up');
      }
      ip('link', 'set', 'sv5br', 'up');
      wrap = ['ip', 'netns', 'exec', ns];
      netA = { kind: 'tap', ifname: 'sv5ta' };
      netB = { kind: 'tap', ifname: 'sv5tb' };
    }
    const a = new Vm({ name: 'bench-a', image, mac: MAC_A, ip: '10.5.11.1/24', cmd: 'iperf3 -s -1', net: netA, wrap });
    vms.push(a);
    if (path === 'stream') { // a's QEMU must be listening before b connects (no reconnect in QEMU 7.2's stream)
      const sock = (netA as { socket: string }).socket;
      for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 100));
    }
    const b = new Vm({
      name: 'bench-b', image, mac: MAC_B, ip: '10.5.11.2/24', net: netB, wrap,
      // Wait until a answers (it may still be booting; pings queued behind ARP would count its boot
      // time as RTT), then measure.
      cmd: `i=0; until ping -c 1 -W 1 10.5.11.1 > /dev/null; do i=$((i+1)); [ $i -ge 60 ] && exit 1; done; ping -c ${pings + 1} -i 0.2 10.5.11.1 && for i in 1 2 3 4 5 6 7 8 9 10; do iperf3 -c 10.5.11.1 -t ${seconds} && break; sleep 1; done`,
    });
    vms.push(b);
    const limit = setTimeout(() => vms.forEach((v) => v.kill()), (60 + seconds * 3) * 1000);
    const rb = await b.done;
    clearTimeout(limit);
    const rtts = pingRtts(rb.output).slice(1);
    const mbit = iperfReceiverMbits(rb.output)[0] ?? NaN;
    return { mbit, rttMs: median(rtts), error: rb.rc === 0 ? '' : `guest command failed (rc ${rb.rc}): ${rb.console.slice(-300)}` };
  } catch (e) {
    return { mbit: NaN, rttMs: NaN, error: (e as Error).message };
  } finally {
    for (const v of vms) v.kill();
    await Promise.all(vms.map((v) => v.done.catch(() => {})));
    for (const c of cleanups.reverse()) await Promise.resolve().then(c).catch(() => {});
  }
}

export async function runVmBench(o: VmBenchOptions = {}): Promise<{ trials: Trial[]; rows: (string | number)[][] }> {
  const rounds = o.rounds ?? 3;
  const seconds = o.seconds ?? 5;
  const pings = o.pings ?? 20;
  const paths = o.paths ?? VM_PATHS;
  const image = ensureImage();
  const machine = machineInfo();
  const log = (s: string) => process.stderr.write(`bench vm: ${s}\n`);
  log(`${machine.cpuModel}, ${machine.cpus} CPUs, Node ${machine.node}; ${rounds} rounds x ${paths.join(', ')}; iperf3 -t ${seconds}, ${pings} pings; QEMU TCG, 1 vCPU per VM`);
  const trials: Trial[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const path of paths) {
      const t = { path, round, ...(await trial(path, image, seconds, pings)) };
      trials.push(t);
      log(`round ${round} ${path}: ${t.mbit.toFixed(0)} Mbit/s, ping ${t.rttMs.toFixed(2)} ms${t.error ? ` ERROR ${t.error}` : ''}`);
    }
  }
  const med = Object.fromEntries(paths.map((p) => {
    const ts = trials.filter((t) => t.path === p && !t.error);
    return [p, { mbit: median(ts.map((t) => t.mbit)), rtt: median(ts.map((t) => t.rttMs)), n: ts.length }];
  })) as Record<VmPath, { mbit: number; rtt: number; n: number }>;
  const base = med.svnic ?? med[paths[0]!];
  const rows = paths.map((p) => [p, med[p].n, Math.round(med[p].mbit), Number(med[p].rtt.toFixed(2)),
    Number((base.mbit / med[p].mbit).toFixed(2)), Number((med[p].rtt / base.rtt).toFixed(2))]);
  process.stdout.write(`${table(['path', 'trials', 'iperf3 Mbit/s (median)', 'ping RTT ms (median)', 'svnic/this throughput', 'this/svnic RTT'], rows)}\n`);
  if (o.json) writeFileSync(o.json, JSON.stringify({ command: o.command, machine, date: new Date().toISOString(), rounds, seconds, pings, trials, medians: med }, null, 2));
  return { trials, rows };
}
