/**
 * `svnic run --config FILE`: start the devices, uplinks, guests and VIFs a config file describes
 * (format: docs/config.md), run until Ctrl-C / SIGTERM, --duration, or every guest has exited, then
 * stop everything and print the final counters. Progress goes to stderr, results to stdout.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { ConfigError, type Config } from '../config/schema.js';
import { applyConfig, type RunSnapshot, type Running } from '../config/apply.js';

interface RunOptions {
  config: string;
  duration?: number;
  json?: boolean;
  check?: boolean;
}

type StopReason = 'signal' | 'duration' | 'guests-exited';

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number of seconds > 0');
  return n;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('start the devices, uplinks, guests and VIFs described by a config file, and run them until stopped')
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON); see docs/config.md')
    .option('-d, --duration <seconds>', 'stop after this many seconds', seconds)
    .option('--json', 'print the final counters as JSON instead of tables')
    .option('--check', 'only validate the config file (and print what it resolves to), then exit')
    // usage errors (a missing --config, a bad --duration) exit with 2, like an invalid config
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .addHelpText('after', `
It stops, and prints the final per-VIF and per-device counters, when any of these happens:
  - Ctrl-C (SIGINT) or SIGTERM (a second one exits at once, without counters),
  - --duration seconds have passed,
  - every guest has exited (its main returned or threw).
Once all VIFs are plugged, every guest is sent the message "go" (ctx.message() in the guest).
Guest module paths are relative to the config file; a .ts path runs its compiled .js
(via the nearest tsconfig.json: examples/hello-guest.ts -> dist/examples/hello-guest.js).

Exit status: 0 ok, 1 a guest failed or startup failed, 2 invalid config or usage.
Progress goes to stderr; the counters (or the JSON) go to stdout.

Examples:
  $ svnic run --config examples/svnic.yaml
  $ svnic run -c svnic.yaml --duration 10 --json > counters.json
  $ svnic run -c svnic.yaml --check`)
    .action(async (opts: RunOptions) => {
      process.exitCode = await run(opts);
    });
}

const log = (msg: string) => process.stderr.write(`svnic: ${msg}\n`);
const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;

function describeConfig(c: Config): string {
  const devs = c.devices.map((d) => `${d.name} (${plural(d.engines, 'engine')}, ${d.uplink.kind} uplink${d.uplink.kind === 'wire' ? ` to ${d.uplink.peer}` : ''})`);
  const vifs = c.guests.reduce((n, g) => n + g.vifs.length, 0);
  const guests = c.guests.length ? `${plural(c.guests.length, 'guest')} (${c.guests.map((g) => g.name).join(', ')})` : 'no guests';
  return `${devs.join(', ')}; ${guests}; ${plural(vifs, 'VIF')}`;
}

async function run(opts: RunOptions): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(opts.config);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      log(`${opts.config}: ${plural(e.issues.length, 'problem')}; nothing was started (format: docs/config.md)`);
      return 2;
    }
    throw e;
  }
  if (opts.check) {
    if (opts.json) process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    else log(`${opts.config} is valid: ${describeConfig(config)}`);
    return 0;
  }

  // Signals: the first stops cleanly (even during startup), a second exits at once.
  let signalled: (() => void) | null = null;
  let gotSignal = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (gotSignal) {
      log(`${sig} again: exiting without stopping cleanly`);
      process.exit(130);
    }
    gotSignal = true;
    log(`${sig}: stopping`);
    signalled?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    let running: Running;
    try {
      running = await applyConfig(config);
    } catch (e) {
      log(`could not start ${opts.config}: ${(e as Error).message}`);
      return 1;
    }
    for (const g of running.guests.values()) {
      g.on('failed', (err: string) => log(`guest ${g.id} failed: ${err.split('\n')[0]}`));
      g.on('done', () => log(`guest ${g.id} done`));
    }
    const until = opts.duration !== undefined ? `for ${opts.duration} s, or until` : 'until';
    log(`running ${describeConfig(config)}; ${until} ${config.guests.length ? 'all guests exit or ' : ''}Ctrl-C`);

    const reason = await new Promise<StopReason>((resolve) => {
      if (gotSignal) return resolve('signal');
      signalled = () => resolve('signal');
      if (opts.duration !== undefined) timer = setTimeout(() => resolve('duration'), opts.duration * 1000);
      void running.guestsExited.then(() => resolve('guests-exited'));
    });
    const snap = await running.stop();
    const secs = (performance.now() - t0) / 1000;
    const why = { signal: 'on a signal', duration: `after --duration ${opts.duration} s`, 'guests-exited': 'all guests exited' }[reason];
    log(`stopped (${why}) after ${secs.toFixed(1)} s`);
    if (opts.json) process.stdout.write(`${JSON.stringify({ config: opts.config, reason, seconds: secs, ...snap }, null, 2)}\n`);
    else process.stdout.write(formatSnapshot(snap));
    const failed = snap.guests.filter((g) => g.state === 'failed');
    return failed.length ? 1 : 0;
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Everything is stopped; if some handle still keeps the loop alive, do not hang the shell.
    setTimeout(() => process.exit(), 2000).unref();
  }
}

function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  const width = header.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => (numeric[i] ? c.padStart(width[i]!) : c.padEnd(width[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** The final counters as text tables: VIFs, devices, then any drop reasons and guest outcomes. */
export function formatSnapshot(s: RunSnapshot): string {
  let out = '';
  if (s.vifs.length) {
    out += table(
      ['VIF', 'GUEST', 'DEVICE', 'MAC', 'SEG', 'TX_FRAMES', 'TX_BYTES', 'RX_FRAMES', 'RX_BYTES', 'DROPS'],
      s.vifs.map((v) => [v.name, v.guest, v.device, v.mac, v.segment, v.counters.tx_frames, v.counters.tx_bytes,
        v.counters.rx_frames, v.counters.rx_bytes, v.drops]),
    );
    out += '\n';
  }
  out += table(
    ['DEVICE', 'UPLINK', 'UPLINK_TX', 'UPLINK_RX', 'FWD', 'FLOOD_COPIES', 'DROPS'],
    s.devices.map((d) => [d.name, d.uplink, d.counters.uplink_tx_frames, d.counters.uplink_rx_frames, d.counters.fwd_out_frames,
      d.counters.flood_copies, d.drops]),
  );
  const drops = [
    ...s.vifs.filter((v) => v.drops).map((v) => `${v.name}: ${Object.entries(v.dropReasons).map(([k, n]) => `${k}=${n}`).join(' ')}`),
    ...s.devices.filter((d) => d.drops).map((d) => `${d.name}: ${Object.entries(d.dropReasons).map(([k, n]) => `${k}=${n}`).join(' ')}`),
  ];
  if (drops.length) out += `\ndrops:\n${drops.map((l) => `  ${l}`).join('\n')}\n`;
  if (s.guests.length) out += `\nguests: ${s.guests.map((g) => `${g.name} ${g.state}`).join(', ')}\n`;
  for (const g of s.guests.filter((x) => x.error)) out += `  ${g.name}: ${g.error!.split('\n')[0]}\n`;
  return out;
}
