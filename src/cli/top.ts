/**
 * `svnic top`: a live terminal view of a running daemon, redrawn every second: per-VIF frame and
 * bit rates in both directions and drops (busiest first), and engine utilisation as bars.
 * q or Ctrl-C quits. Without a terminal it prints one frame and exits (use `svnic stats --watch`).
 */
import type { Command } from 'commander';
import type { Stats } from '../daemon/sampler.js';
import { Client, runClient, withClientOptions, type ClientOptions } from './client.js';
import { si } from './stats.js';
import { table } from './table.js';

const bar = (f: number, w = 20) => {
  const n = Math.round(Math.max(0, Math.min(1, f)) * w);
  return `[${'#'.repeat(n)}${'.'.repeat(w - n)}]`;
};

export function topFrame(s: Stats, where: string, rows: number): string {
  const vifs = [...s.vifs].sort((a, b) => (b.txPps + b.rxPps + b.dropsPs) - (a.txPps + a.rxPps + a.dropsPs) || a.name.localeCompare(b.name));
  const total = vifs.reduce((a, v) => ({ tx: a.tx + v.txPps, rx: a.rx + v.rxPps, d: a.d + v.dropsPs }), { tx: 0, rx: 0, d: 0 });
  const head = `svnic top - ${where} - ${new Date(s.t).toISOString().slice(11, 19)} - ${vifs.length} VIFs - from guests ${si(total.tx)} fr/s, to guests ${si(total.rx)} fr/s, drops ${si(total.d)}/s`;
  const engines = s.engines.map((e) => `${e.device}/${e.engine} ${bar(e.busy)} ${(e.busy * 100).toFixed(0).padStart(3)}% busy  ${si(e.sleepsPs).padStart(5)} sleeps/s  ${si(e.wakeupsPs).padStart(5)} wakeups/s`);
  const shown = vifs.slice(0, Math.max(1, rows - engines.length - 6));
  const t = table(
    ['VIF', 'GUEST', 'STATE', 'FROM_GUEST fr/s', 'bit/s', 'TO_GUEST fr/s', 'bit/s', 'DROPS/s', 'DROPS', 'TOP DROP REASON'],
    shown.map((v) => {
      const top = Object.entries(v.dropReasons).sort((a, b) => b[1] - a[1])[0];
      return [v.name, v.guest, v.state, si(v.txPps), si(v.txBps), si(v.rxPps), si(v.rxBps), si(v.dropsPs), v.drops, top ? `${top[0]}=${top[1]}` : '-'];
    }),
  );
  const more = vifs.length > shown.length ? `\n(${vifs.length - shown.length} more VIFs; make the terminal taller)` : '';
  return `${head}\n\n${engines.join('\n')}\n\n${t}${more}\n`;
}

export function registerTop(program: Command): void {
  withClientOptions(program.command('top').description('live terminal view of per-VIF rates and drops and engine utilisation (q to quit)')
    .option('-i, --interval <seconds>', 'redraw interval', (v) => Math.max(0.2, Number(v) || 1), 1))
    .action(async (o: ClientOptions & { interval: number }) => runClient(async () => {
      const c = new Client(o);
      const tty = Boolean(process.stdout.isTTY);
      if (!tty) {
        process.stdout.write(topFrame(await c.call<Stats>('GET', '/v1/stats'), c.where, 1000));
        return;
      }
      let quit = false;
      const restore = () => process.stdout.write('\x1b[?25h\x1b[?1049l');
      process.stdout.write('\x1b[?1049h\x1b[?25l');
      if (process.stdin.isTTY) {
        process.stdin.setRawMode(true);
        process.stdin.resume();
        process.stdin.on('data', (b: Buffer) => {
          if (b[0] === 0x71 || b[0] === 0x03) quit = true; // q, Ctrl-C
        });
      }
      process.on('SIGINT', () => (quit = true));
      try {
        while (!quit) {
          const s = await c.call<Stats>('GET', '/v1/stats');
          process.stdout.write(`\x1b[H\x1b[2J${topFrame(s, c.where, process.stdout.rows ?? 40)}`);
          for (let waited = 0; waited < o.interval * 1000 && !quit; waited += 100) await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        restore();
        if (process.stdin.isTTY) process.stdin.setRawMode(false);
        process.stdin.pause();
      }
    }));
}
