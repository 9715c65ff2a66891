/** `svnic stats [--watch]`: per-VIF rates and totals, and engine utilisation, from a running daemon. */
import { InvalidArgumentError, type Command } from 'commander';
import type { Stats } from '../daemon/sampler.js';
import { Client, runClient, withClientOptions, type ClientOptions } from './client.js';
import { table } from './table.js';

/** 1234567 -> "1.23M" (SI), for rates in tables. */
export function si(n: number, unit = ''): string {
  const a = Math.abs(n);
  const [d, s] = a >= 1e9 ? [1e9, 'G'] : a >= 1e6 ? [1e6, 'M'] : a >= 1e3 ? [1e3, 'k'] : [1, ''];
  const v = n / d;
  return `${d === 1 ? Math.round(v) : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)}${s}${unit}`;
}

export function statsTables(s: Stats): string {
  const vifs = table(
    ['VIF', 'GUEST', 'DEVICE', 'STATE', 'FROM_GUEST/s', 'TO_GUEST/s', 'FROM_GUEST bit/s', 'TO_GUEST bit/s', 'DROPS/s', 'FROM_GUEST', 'TO_GUEST', 'DROPS'],
    s.vifs.map((v) => [v.name, v.guest, v.device, v.state, si(v.txPps), si(v.rxPps), si(v.txBps), si(v.rxBps), si(v.dropsPs), v.txFrames, v.rxFrames, v.drops]),
  );
  const engines = table(
    ['DEVICE', 'ENGINE', 'BUSY', 'SLEEPS/s', 'WAKEUPS/s'],
    s.engines.map((e) => [e.device, e.engine, `${(e.busy * 100).toFixed(1)}%`, si(e.sleepsPs), si(e.wakeupsPs)]),
  );
  const reasons = s.vifs.filter((v) => v.drops).map((v) => `  ${v.name}: ${Object.entries(v.dropReasons).map(([k, n]) => `${k}=${n}`).join(' ')}`);
  return `${vifs}\n\n${engines}\n${reasons.length ? `\ndrops by reason:\n${reasons.join('\n')}\n` : ''}`;
}

const seconds = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0.2) throw new InvalidArgumentError('must be a number of seconds >= 0.2');
  return n;
};

export function registerStats(program: Command): void {
  withClientOptions(program.command('stats').description('per-VIF packet, bit and drop rates and engine utilisation of a running daemon')
    .option('-w, --watch', 'print again every --interval seconds until Ctrl-C')
    .option('-i, --interval <seconds>', 'with --watch (default 1)', seconds, 1)
    .option('--json', 'JSON (one object per line with --watch)'))
    .action(async (o: ClientOptions & { watch?: boolean; interval: number; json?: boolean }) => runClient(async () => {
      const c = new Client(o);
      for (;;) {
        const s = await c.call<Stats>('GET', '/v1/stats');
        if (o.json) process.stdout.write(`${JSON.stringify(s, o.watch ? undefined : null, o.watch ? undefined : 2)}\n`);
        else process.stdout.write(`${o.watch ? `--- ${new Date(s.t).toISOString()} (${s.intervalS.toFixed(1)} s interval)\n` : ''}${statsTables(s)}`);
        if (!o.watch) return;
        await new Promise((r) => setTimeout(r, o.interval * 1000));
      }
    }));
}
