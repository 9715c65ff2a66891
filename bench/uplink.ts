/**
 * `svnic bench uplink`: an isolate guest's traffic to the Linux kernel over svnic's VXLAN and TAP
 * uplinks, next to the kernel's own path between two namespaces over a veth pair (the anchor), in
 * one run. Paths alternate within every round so machine drift hits all of them; figures are
 * medians over rounds.
 *  - latency: `ping` from the kernel side to the echo guest (to the far namespace for the anchor),
 *    RTT p50/p99 from every reply's time;
 *  - throughput: UDP datagrams from the guest (the anchor: from a Python sendto loop in one
 *    namespace; `kernel-veth-node`: from Node's dgram) to the same Python UDP sink in the kernel's
 *    namespace; rate = datagrams received / the span from the first to the last.
 * Needs root (namespaces, TAP). Namespaces are sv4-<pid>-* and always deleted.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { cleanup, makeNs, nsExec, sh, startSvnic, systemTestBlocker, veth, type SvnicChild } from '../test/system/helpers/netns.js';
import { machineInfo } from './sysinfo.js';

export interface UplinkBenchOptions {
  rounds?: number;
  durationMs?: number;
  pings?: number;
  json?: string;
  command?: string;
}

type Path = 'kernel-veth' | 'kernel-veth-node' | 'svnic-vxlan' | 'svnic-tap';
const PATHS: Path[] = ['kernel-veth', 'kernel-veth-node', 'svnic-vxlan', 'svnic-tap'];

/**
 * The sink (every path) and the anchor's sender are small Python programs: a plain recv_into /
 * sendto loop costs far less per datagram than Node's dgram, so the anchor shows what the kernel
 * path carries rather than what a Node program can push (that is `kernel-veth-node`).
 */
const PY_SINK = `
import socket, sys, time, json
port, ms = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(('0.0.0.0', port))
print('ready', flush=True)
buf = bytearray(65536)
n = b = 0
first = last = 0.0
s.settimeout(ms / 1000 + 15)
try:
    k = s.recv_into(buf); first = last = time.monotonic(); n, b = 1, k
    end = first + ms / 1000
    s.settimeout(0.2)
    while last < end:
        try:
            k = s.recv_into(buf)
        except socket.timeout:
            if time.monotonic() >= end: break
            continue
        n += 1; b += k; last = time.monotonic()
except socket.timeout:
    pass
print(json.dumps({'count': n, 'bytes': b, 'spanMs': (last - first) * 1000}), flush=True)
`;
const PY_BLAST = `
import socket, sys, time
dst, port, size, ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
p = bytes(size); n = 0; end = time.monotonic() + ms / 1000
while time.monotonic() < end:
    for _ in range(256):
        try:
            s.sendto(p, (dst, port)); n += 1
        except OSError:
            pass
print(n, flush=True)
`;
const SIZES = [18, 1400]; // UDP payload: a 64-byte Ethernet frame, and a large one that fits VXLAN's 1450 inner MTU

interface Trial { path: Path; round: number; kind: 'rtt' | 'udp'; size?: number; p50us?: number; p99us?: number; mpps?: number; gbps?: number; lost?: number }

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

function pingRtts(ns: string, ip: string, n: number): number[] {
  const out = sh('ip', ['netns', 'exec', ns, 'ping', '-c', String(n), '-i', '0.01', '-W', '1', ip], { allowFail: true });
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000);
}

async function sink(ns: string, port: number, ms: number, send: () => Promise<void>): Promise<{ count: number; bytes: number; spanMs: number }> {
  const p = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', PY_SINK, String(port), String(ms)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: p.stdout! });
  const it = lines[Symbol.asyncIterator]();
  await it.next(); // ready
  await send();
  const r = await it.next();
  p.kill();
  return JSON.parse(String(r.value ?? '{"count":0,"bytes":0,"spanMs":0}'));
}

export async function runUplinkBench(opts: UplinkBenchOptions = {}): Promise<unknown> {
  const why = systemTestBlocker(['ping', 'python3']);
  if (why) throw new Error(`bench uplink: ${why}`);
  const rounds = opts.rounds ?? 3;
  const ms = opts.durationMs ?? 2000;
  const pings = opts.pings ?? 200;
  const log = (m: string) => process.stderr.write(`bench uplink: ${m}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'sv4-bench-'));
  const trials: Trial[] = [];
  const children: SvnicChild[] = [];
  try {
    // kernel anchor: two namespaces over veth
    const a1 = makeNs('a1');
    const a2 = makeNs('a2');
    veth(a1, '10.48.0.1/24', a2, '10.48.0.2/24', `${process.pid % 10000}k`);
    // VXLAN: svnic in one namespace, a Linux VTEP in another
    const linux = makeNs('linux');
    const svx = makeNs('svx');
    veth(linux, '192.168.46.2/24', svx, '192.168.46.1/24', `${process.pid % 10000}v`);
    nsExec(linux, 'ip', 'link', 'add', 'vx46', 'type', 'vxlan', 'id', '46', 'remote', '192.168.46.1', 'local', '192.168.46.2', 'dstport', '4789',
      'dev', `sv4${process.pid % 10000}va`);
    nsExec(linux, 'ip', 'addr', 'add', '10.46.0.1/24', 'dev', 'vx46');
    nsExec(linux, 'ip', 'link', 'set', 'vx46', 'up');
    // TAP: svnic in one namespace, its TAP interface addressed there
    const stap = makeNs('tap');
    const tapName = `sv4bt${process.pid % 10000}`;
    const start = async (name: string, ns: string, uplink: object, ip: string): Promise<SvnicChild> => {
      const cfg = { device: { name: 'dev', uplink }, guests: [{ name: 'g', module: 'svnic:echo', args: { ip }, vifs: [{ name: 'g-eth0' }] }] };
      writeFileSync(join(dir, `${name}.json`), JSON.stringify(cfg));
      const c = await startSvnic(join(dir, `${name}.json`), ns);
      children.push(c);
      await c.report('g', (d) => d.ready === true);
      return c;
    };
    const cvx = await start('vxlan', svx, { kind: 'vxlan', local: '192.168.46.1', vnis: [{ vni: 46, remotes: ['192.168.46.2'] }] }, '10.46.0.2/24');
    const ctap = await start('tap', stap, { kind: 'tap', ifname: tapName }, '10.47.0.2/24');
    nsExec(stap, 'ip', 'addr', 'add', '10.47.0.1/24', 'dev', tapName);
    nsExec(stap, 'ip', 'link', 'set', tapName, 'up');
    const where: Record<Path, { kernelNs: string; target: string; kernelIp: string; child?: SvnicChild }> = {
      'kernel-veth': { kernelNs: a2, target: '10.48.0.1', kernelIp: '10.48.0.2' },
      'kernel-veth-node': { kernelNs: a2, target: '10.48.0.1', kernelIp: '10.48.0.2' },
      'svnic-vxlan': { kernelNs: linux, target: '10.46.0.2', kernelIp: '10.46.0.1', child: cvx },
      'svnic-tap': { kernelNs: stap, target: '10.47.0.2', kernelIp: '10.47.0.1', child: ctap },
    };
    let tag = 0;
    // warm-up: ARP everywhere
    for (const p of PATHS) pingRtts(where[p].kernelNs, where[p].target, 3);
    for (let round = 0; round < rounds; round++) {
      for (const path of PATHS) {
        const w = where[path];
        if (path !== 'kernel-veth-node') { // the same ping path as kernel-veth
          const rtts = pingRtts(w.kernelNs, w.target, pings);
          trials.push({ path, round, kind: 'rtt', p50us: median(rtts), p99us: pct(rtts, 99), lost: pings - rtts.length });
        }
        for (const size of SIZES) {
          const r = await sink(w.kernelNs, 9000, ms, async () => {
            if (w.child) {
              const t = ++tag;
              await w.child.call({ cmd: 'send', guest: 'g', msg: { blast: w.kernelIp, port: 9000, size, durationMs: ms + 500, tag: t } });
              void w.child.report('g', (d) => d.tag === t, 60_000);
            } else if (path === 'kernel-veth-node') {
              const blast = fileURLToPath(new URL('./uplink-blast.js', import.meta.url));
              spawn('ip', ['netns', 'exec', a1, process.execPath, blast, w.kernelIp, '9000', String(size), String(ms + 500)], { stdio: 'ignore' });
            } else {
              spawn('ip', ['netns', 'exec', a1, 'python3', '-c', PY_BLAST, w.kernelIp, '9000', String(size), String(ms + 500)], { stdio: 'ignore' });
            }
          });
          const pps = r.spanMs > 0 ? (r.count - 1) / (r.spanMs / 1000) : 0;
          trials.push({ path, round, kind: 'udp', size, mpps: pps / 1e6, gbps: (pps * size * 8) / 1e9 });
          await new Promise((res) => setTimeout(res, ms / 2 + 600)); // let the sender finish
        }
        log(`round ${round + 1}/${rounds} ${path} done`);
      }
    }
  } finally {
    await Promise.all(children.map((c) => c.stop().catch(() => {})));
    cleanup();
  }
  const rows = PATHS.flatMap((path) => {
    const rtt = trials.filter((t) => t.path === path && t.kind === 'rtt');
    return [
      ...(path === 'kernel-veth-node' ? [] : [{ path, kind: 'rtt', p50us: median(rtt.map((t) => t.p50us!)), p99us: median(rtt.map((t) => t.p99us!)), lost: rtt.reduce((s, t) => s + t.lost!, 0) }]),
      ...SIZES.map((size) => {
        const u = trials.filter((t) => t.path === path && t.kind === 'udp' && t.size === size);
        return { path, kind: 'udp', payloadBytes: size, mpps: median(u.map((t) => t.mpps!)), gbps: median(u.map((t) => t.gbps!)) };
      }),
    ];
  });
  const anchor = (kind: string, size?: number) => rows.find((r) => r.path === 'kernel-veth' && r.kind === kind && (r as { payloadBytes?: number }).payloadBytes === size) as any;
  const ratios = rows.filter((r) => r.path !== 'kernel-veth').map((r: any) => r.kind === 'rtt'
    ? { path: r.path, latencyP50: r.p50us / anchor('rtt').p50us }
    : { path: r.path, payloadBytes: r.payloadBytes, throughput: r.mpps / anchor('udp', r.payloadBytes).mpps });
  const result = {
    command: opts.command ?? 'svnic bench uplink', date: new Date().toISOString(), machine: machineInfo(), rounds, durationMs: ms, pings,
    threads: {
      'kernel-veth': 'sender: 1 Python thread (sendto loop) + kernel; sink: 1 Python thread (recv_into loop)',
      'kernel-veth-node': 'sender: 1 Node thread (dgram, 64 in flight) + kernel; sink: the same Python sink',
      'svnic-vxlan': 'guest worker + engine worker + VXLAN worker (3 threads) + kernel vxlan; sink: the same Python sink',
      'svnic-tap': 'guest worker + engine worker + 2 TAP workers (3 busy) + kernel; sink: the same Python sink',
    },
    rows, ratios, trials,
  };
  for (const r of rows as any[]) {
    if (r.kind === 'rtt') log(`${r.path.padEnd(16)} ping RTT p50 ${r.p50us.toFixed(0)} µs p99 ${r.p99us.toFixed(0)} µs (lost ${r.lost})`);
    else log(`${r.path.padEnd(16)} UDP ${String(r.payloadBytes).padStart(4)} B  ${r.mpps.toFixed(3)} Mpps  ${r.gbps.toFixed(3)} Gbit/s`);
  }
  for (const r of ratios as any[]) log(`${r.path} / kernel-veth: ${'latencyP50' in r ? `latency p50 x${r.latencyP50.toFixed(2)}` : `throughput ${r.payloadBytes} B x${r.throughput.toFixed(2)}`}`);
  if (opts.json) writeFileSync(opts.json, JSON.stringify(result, null, 2));
  return result;
}
