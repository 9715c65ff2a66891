/**
 * `svnic capture`: run a config (as `svnic run` does) and write one VIF's or one device uplink's
 * traffic to a classic pcap file that tcpdump, tshark and Wireshark read. Stops on Ctrl-C or
 * after --duration, then prints how many frames were written.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../config/schema.js';
import { applyConfig } from '../config/apply.js';
import { captureVif } from '../capture/vif-capture.js';

interface CaptureOptions {
  config: string;
  vif?: string;
  uplink?: string;
  write: string;
  mode: 'inner' | 'outer';
  duration?: number;
}

const log = (msg: string) => process.stderr.write(`svnic capture: ${msg}\n`);

export function registerCapture(program: Command): void {
  program
    .command('capture')
    .description('run a config and write a VIF\'s or an uplink\'s traffic to a pcap file')
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON); see docs/config.md')
    .option('--vif <name>', 'capture this VIF (the frames its guest sends and the frames delivered to it)')
    .option('--uplink <device>', 'capture the uplink of this device (vxlan or tap)')
    .requiredOption('-w, --write <file>', 'pcap file to write (LINKTYPE_ETHERNET)')
    .option('--mode <mode>', 'vxlan uplink: inner (Ethernet frames) or outer (UDP/VXLAN datagrams)', (v) => {
      if (v !== 'inner' && v !== 'outer') throw new InvalidArgumentError('must be inner or outer');
      return v;
    }, 'inner')
    .option('-d, --duration <seconds>', 'stop after this many seconds', (v) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number of seconds > 0');
      return n;
    })
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .addHelpText('after', `
Examples:
  $ svnic capture -c examples/vxlan.yaml --vif echo-eth0 -w echo.pcap --duration 30
  $ svnic capture -c examples/vxlan.yaml --uplink dev0 --mode outer -w tunnel.pcap
  $ tshark -r tunnel.pcap -d udp.port==4789,vxlan

A capture can also start with the config itself: \`capture: file.pcap\` on a VIF, or
\`capture: { path: file.pcap, mode: outer }\` on a vxlan or tap uplink (docs/uplinks.md).`)
    .action(async (opts: CaptureOptions) => {
      process.exitCode = await capture(opts);
    });
}

async function capture(opts: CaptureOptions): Promise<number> {
  if ((opts.vif === undefined) === (opts.uplink === undefined)) {
    log('give exactly one of --vif NAME or --uplink DEVICE');
    return 2;
  }
  let config;
  try {
    config = loadConfig(opts.config);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const run = await applyConfig(config).catch((e: Error) => {
    log(e.message);
    return null;
  });
  if (run === null) return 1;
  try {
    if (opts.vif !== undefined) {
      const v = run.vifs.get(opts.vif);
      if (!v) throw new Error(`no VIF named "${opts.vif}"; VIFs: ${[...run.vifs.keys()].join(', ') || '(none)'}`);
      await captureVif(v, opts.write);
    } else {
      const u = run.uplinks.get(opts.uplink!) as { kind: string; capture?: (p: string | null, m?: 'inner' | 'outer') => Promise<void> } | undefined;
      if (!u) throw new Error(`no device named "${opts.uplink}"; devices: ${[...run.devices.keys()].join(', ')}`);
      if (!u.capture) throw new Error(`device "${opts.uplink}" has a ${u.kind} uplink, which cannot be captured; capture one of its VIFs instead`);
      await u.capture(opts.write, opts.mode);
    }
  } catch (e) {
    log((e as Error).message);
    await run.stop();
    return 2;
  }
  log(`writing ${opts.write}; Ctrl-C to stop`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    if (opts.duration !== undefined) setTimeout(resolve, opts.duration * 1000).unref();
  });
  const snap = await run.stop();
  const up = opts.uplink !== undefined ? snap.devices.find((d) => d.name === opts.uplink)?.uplinkCounters : undefined;
  log(`stopped; ${opts.write} written${up ? ` (uplink counters: ${JSON.stringify(up)})` : ''}`);
  return 0;
}
