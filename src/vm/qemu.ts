/**
 * Boot a Linux VM under QEMU/TCG (KVM does not run a stock kernel on these machines; see
 * MACHINE-NOTES) with its guest RAM in a shared memfd, so a vhost-user backend can map it, and one
 * virtio-net device whose backend is chosen by `net`:
 *   vhost-user  svnic (QEMU connects to svnic's socket, or listens with server=on)
 *   stream      QEMU's own -netdev stream over a unix socket (the baseline)
 *   tap         a TAP device (baseline with a Linux bridge on the host)
 * QEMU 7.2 crashes with vhost-user plus MSI-X under TCG: the device runs with vectors=0 (INTx).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { VmImage } from './image.js';
import { SvnicError } from '../hypervisor/errors.js';

export type VmNet =
  | { kind: 'vhost-user'; socket: string; server?: boolean }
  | { kind: 'stream'; socket: string; server: boolean }
  | { kind: 'tap'; ifname: string };

export interface VmOptions {
  name: string;
  image: VmImage;
  memMb?: number;
  mac: string;
  /** eth0 address with prefix, e.g. 10.5.0.1/24 */
  ip: string;
  /** Shell command the guest runs once eth0 is up; the VM powers off when it ends. */
  cmd: string;
  net: VmNet;
  qemu?: string;
  /** vhost-user only: ring size QEMU offers the guest (256..1024; default 1024). */
  queueSize?: number;
  /** Command prefix, e.g. ['ip', 'netns', 'exec', NAME] to run QEMU inside a network namespace. */
  wrap?: string[];
}

export interface VmResult {
  /** Exit status of the guest command (-1 if the VM ended without reporting one). */
  rc: number;
  /** Console output of the guest command (between SVNIC-READY and SVNIC-RC). */
  output: string;
  console: string;
  qemuExit: number | null;
  signal: string | null;
}

export function qemuArgs(o: VmOptions): string[] {
  const mem = o.memMb ?? 256;
  const cmd = Buffer.from(o.cmd).toString('base64');
  const args = [
    '-accel', 'tcg', '-M', 'pc', '-m', `${mem}M`, '-smp', '1', '-nodefaults', '-no-user-config',
    '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot', '-name', o.name,
    '-kernel', o.image.kernel, '-initrd', o.image.initrd,
    '-append', `console=ttyS0 quiet panic=-1 svnic.ip=${o.ip} svnic.cmd=${cmd}`,
    '-object', `memory-backend-memfd,id=mem,size=${mem}M,share=on`, '-numa', 'node,memdev=mem',
  ];
  const n = o.net;
  if (n.kind === 'vhost-user') {
    args.push('-chardev', `socket,id=vu0,path=${n.socket}${n.server ? ',server=on,wait=off' : ''}`,
      '-netdev', 'vhost-user,id=n0,chardev=vu0');
  } else if (n.kind === 'stream') {
    args.push('-netdev', `stream,id=n0,server=${n.server ? 'on' : 'off'},addr.type=unix,addr.path=${n.socket}`);
  } else {
    args.push('-netdev', `tap,id=n0,ifname=${n.ifname},script=no,downscript=no`);
  }
  // vhost-user lets QEMU offer 1024-entry rings (its default is 256): more receive buffers posted
  // means fewer frames dropped when the guest is slow to refill (rx_no_buffer), as under TCG.
  const rings = n.kind === 'vhost-user' ? `,rx_queue_size=${o.queueSize ?? 1024},tx_queue_size=${o.queueSize ?? 1024}` : '';
  args.push('-device', `virtio-net-pci,netdev=n0,mac=${o.mac},vectors=0,disable-legacy=on${rings}`);
  return args;
}

/** A running VM. `done` resolves when QEMU exits (the guest powered off, or it was killed). */
export class Vm {
  readonly proc: ChildProcess;
  console = '';
  readonly done: Promise<VmResult>;
  private readyWaiters: (() => void)[] = [];
  private isReady = false;

  constructor(o: VmOptions) {
    const argv = [...(o.wrap ?? []), o.qemu ?? 'qemu-system-x86_64', ...qemuArgs(o)];
    this.proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
      this.console += s;
      if (!this.isReady && this.console.includes('SVNIC-READY')) {
        this.isReady = true;
        this.readyWaiters.splice(0).forEach((f) => f());
      }
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (s: string) => (this.console += s));
    this.done = new Promise((resolve, reject) => {
      this.proc.on('error', (e) => reject(new SvnicError('VM_FAILED', `cannot start QEMU for ${o.name}: ${e.message} (install qemu-system-x86)`)));
      this.proc.on('exit', (code, signal) => resolve(parseResult(this.console, code, signal)));
    });
  }

  /** Resolves once the guest printed SVNIC-READY (eth0 up). */
  ready(): Promise<void> {
    return this.isReady ? Promise.resolve() : new Promise((r) => this.readyWaiters.push(r));
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
  }
}

export function parseResult(console: string, qemuExit: number | null, signal: string | null): VmResult {
  const text = console.replace(/\r/g, '');
  const start = text.indexOf('SVNIC-READY\n');
  const m = /SVNIC-RC=(\d+)/.exec(text);
  const output = start >= 0 ? text.slice(start + 12, m ? m.index : undefined) : '';
  return { rc: m ? Number(m[1]) : -1, output, console: text, qemuExit, signal };
}

/** Mbit/s of the receiver lines of iperf3's text report, in order. */
export function iperfReceiverMbits(output: string): number[] {
  const r: number[] = [];
  for (const line of output.split('\n')) {
    const m = /([\d.]+) ([KMG])bits\/sec.*receiver/.exec(line);
    if (m) r.push(Number(m[1]) * ({ K: 1e-3, M: 1, G: 1e3 } as Record<string, number>)[m[2]!]!);
  }
  return r;
}

/** Round-trip times (ms) of busybox ping's reply lines. */
export function pingRtts(output: string): number[] {
  return [...output.matchAll(/seq=\d+ ttl=\d+ time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}
