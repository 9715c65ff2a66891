/**
 * The daemon's control-plane costs at scale (a benchmark, not a test; results in docs/daemon.md):
 * for N VIFs on one device (one guest holding them all, sending nothing),
 *  - apply: time to create and plug N VIFs from a config (startup),
 *  - one VIF call: POST /v1/vifs, PATCH (in place), DELETE, over the unix socket (median of 5),
 *  - GET /metrics: time and size of a scrape; GET /v1/vifs; GET /v1/stats,
 *  - the daemon's own CPU while idle (its 1 s sampler), over 5 s.
 * Run: npx tsc -p . && node dist/bench/daemon.js [N ...]   (default 16 256 1024)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemon } from '../src/daemon/daemon.js';
import { Client } from '../src/cli/client.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const r = await fn();
  return [performance.now() - t, r];
}

async function run(n: number): Promise<Record<string, number | string>> {
  const dir = mkdtempSync(join(tmpdir(), `sv7-bench-${process.pid}-`));
  const cfg = join(dir, 'svnic.yaml');
  const vifs = Array.from({ length: n }, (_, i) => `      - { name: v${i} }`).join('\n');
  writeFileSync(cfg, `device: { name: dev0, maxVifs: 1024 }\nguests:\n  - name: g\n    module: ${JSON.stringify(join(ROOT, 'src/guest/programs/traffic.ts'))}\n    args: { pps: 0 }\n    vifs:\n${vifs}\n`);
  const [applyMs, d] = await timed(() => startDaemon({ config: cfg, socket: join(dir, 'api.sock'), persist: false, log: () => {} }));
  try {
    const c = new Client({ socket: d.socket });
    const post: number[] = [];
    const patch: number[] = [];
    const del: number[] = [];
    for (let i = 0; i < 5; i++) {
      if (n >= 1024) break;
      post.push((await timed(() => c.call('POST', '/v1/vifs', { guest: 'g', name: `x${i}` })))[0]);
      patch.push((await timed(() => c.call('PATCH', `/v1/vifs/x${i}`, { mtu: 1400 })))[0]);
      del.push((await timed(() => c.call('DELETE', `/v1/vifs/x${i}`)))[0]);
    }
    const scrapes: number[] = [];
    let size = 0;
    for (let i = 0; i < 5; i++) {
      const [ms, text] = await timed(() => c.call<string>('GET', '/metrics'));
      scrapes.push(ms);
      size = text.length;
    }
    const list: number[] = [];
    const stats: number[] = [];
    for (let i = 0; i < 5; i++) {
      list.push((await timed(() => c.call('GET', '/v1/vifs')))[0]);
      stats.push((await timed(() => c.call('GET', '/v1/stats')))[0]);
    }
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 5000));
    const cpu = process.cpuUsage(cpu0);
    const idleCores = (cpu.user + cpu.system) / 1000 / (performance.now() - t0);
    return {
      vifs: n, applyMs: Math.round(applyMs),
      postMs: post.length ? +median(post).toFixed(1) : '-', patchMs: patch.length ? +median(patch).toFixed(1) : '-', deleteMs: del.length ? +median(del).toFixed(1) : '-',
      metricsMs: +median(scrapes).toFixed(1), metricsKiB: Math.round(size / 1024), vifsListMs: +median(list).toFixed(1), statsMs: +median(stats).toFixed(1),
      idleCpuPercentOfCore: +(idleCores * 100).toFixed(2),
    };
  } finally {
    await d.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const sizes = process.argv.slice(2).map(Number).filter((x) => x > 0);
console.log(`svnicd control-plane costs; ${cpus().length} x ${cpus()[0]?.model.trim()}, node ${process.version}, ${new Date().toISOString()}`);
console.log('(the process CPU includes the guest and engine threads, which are idle: the guest sends nothing)');
for (const n of sizes.length ? sizes : [16, 256, 1024]) console.log(JSON.stringify(await run(n)));
process.exit(0);
