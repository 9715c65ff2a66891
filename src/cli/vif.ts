/** `svnic vif ls|add|rm|set`: VIFs of a running daemon (docs/daemon.md). */
import { InvalidArgumentError, type Command } from 'commander';
import { Client, runClient, withClientOptions, type ClientOptions } from './client.js';
import { table } from './table.js';

interface ApplyResult { generation: number; summary: string[]; dryRun: boolean }
interface VifView {
  name: string; guest: string; device: string; state: string; mac: string; mtu: number; segment: number; engine: number;
  linkUp: boolean; promiscuous: boolean; qos: unknown; counters: Record<string, number>; drops: number;
}

const int = (v: string) => {
  if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError('must be an integer');
  return Number(v);
};
const bool = (v: string) => {
  if (v !== 'true' && v !== 'false' && v !== 'up' && v !== 'down') throw new InvalidArgumentError('must be true/false (or up/down)');
  return v === 'true' || v === 'up';
};
const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

interface FieldOpts {
  device?: string; mac?: string; mtu?: number; segment?: number; queueSize?: number; engine?: number; link?: boolean;
  promiscuous?: boolean; multicast?: string[]; coalesceFrames?: number; coalesceUsecs?: number;
}

function fields(o: FieldOpts): Record<string, unknown> {
  const b: Record<string, unknown> = {};
  if (o.device !== undefined) b.device = o.device;
  if (o.mac !== undefined) b.mac = o.mac;
  if (o.mtu !== undefined) b.mtu = o.mtu;
  if (o.segment !== undefined) b.segment = o.segment;
  if (o.queueSize !== undefined) b.queueSize = o.queueSize;
  if (o.engine !== undefined) b.engine = o.engine;
  if (o.link !== undefined) b.linkUp = o.link;
  if (o.promiscuous !== undefined) b.promiscuous = o.promiscuous;
  if (o.multicast !== undefined) b.multicast = o.multicast;
  if (o.coalesceFrames !== undefined || o.coalesceUsecs !== undefined) {
    b.coalesce = { ...(o.coalesceFrames !== undefined ? { frames: o.coalesceFrames } : {}), ...(o.coalesceUsecs !== undefined ? { usecs: o.coalesceUsecs } : {}) };
  }
  return b;
}

const withFields = (c: Command) => c
  .option('--device <name>', 'device (needed when there are several)')
  .option('--mac <mac>', 'unicast MAC, e.g. 02:00:00:00:00:0a')
  .option('--mtu <n>', 'MTU 68..9000', int)
  .option('--segment <n>', 'L2 segment 0..16383', int)
  .option('--queue-size <n>', 'virtqueue size, a power of two', int)
  .option('--engine <n>', 'engine to pin the VIF to', int)
  .option('--link <up|down>', 'link state', bool)
  .option('--promiscuous <true|false>', 'receive every frame of its segment', bool)
  .option('--multicast <macs>', 'comma-separated multicast groups', list)
  .option('--coalesce-frames <n>', 'at most one interrupt per n frames', int)
  .option('--coalesce-usecs <n>', 'or per n microseconds', int);

function printResult(r: ApplyResult, json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return;
  }
  for (const l of r.summary) process.stdout.write(`${l}\n`);
  process.stdout.write(`${r.dryRun ? 'dry run: nothing changed' : `generation ${r.generation}`}${r.summary.length ? '' : ' (no changes)'}\n`);
}

export function vifTable(vifs: VifView[]): string {
  return table(
    ['VIF', 'GUEST', 'DEVICE', 'STATE', 'MAC', 'MTU', 'SEG', 'ENG', 'LINK', 'QOS', 'FROM_GUEST', 'TO_GUEST', 'DROPS'],
    vifs.map((v) => [v.name, v.guest, v.device, v.state, v.mac, v.mtu, v.segment, v.engine, v.linkUp ? 'up' : 'down',
      v.qos === null ? '-' : JSON.stringify(v.qos), v.counters.tx_frames ?? 0, v.counters.rx_frames ?? 0, v.drops]),
  );
}

export function registerVif(program: Command): void {
  const vif = program.command('vif').description('list, add, remove and change the VIFs of a running daemon (svnic daemon)');
  withClientOptions(vif.command('ls').description('list VIFs with state and counters').option('--json', 'JSON instead of a table'))
    .action(async (o: ClientOptions & { json?: boolean }) => runClient(async () => {
      const vifs = await new Client(o).call<VifView[]>('GET', '/v1/vifs');
      process.stdout.write(o.json ? `${JSON.stringify(vifs, null, 2)}\n` : `${vifTable(vifs)}\n`);
    }));
  withClientOptions(withFields(vif.command('add').description('create a VIF and plug it into a guest')
    .requiredOption('--guest <name>', 'the guest to plug it into')
    .option('--name <name>', 'VIF name (default <guest>-eth<n>)')
    .option('--dry-run', 'show what would change, change nothing')
    .option('--json', 'JSON output')))
    .action(async (o: ClientOptions & FieldOpts & { guest: string; name?: string; dryRun?: boolean; json?: boolean }) => runClient(async () => {
      const body = { guest: o.guest, ...(o.name ? { name: o.name } : {}), ...fields(o) };
      printResult(await new Client(o).call<ApplyResult>('POST', `/v1/vifs${o.dryRun ? '?dryRun=true' : ''}`, body), o.json);
    }));
  withClientOptions(vif.command('rm').description('unplug and destroy a VIF').argument('<name>', 'VIF name')
    .option('--dry-run', 'show what would change').option('--json', 'JSON output'))
    .action(async (name: string, o: ClientOptions & { dryRun?: boolean; json?: boolean }) => runClient(async () => {
      printResult(await new Client(o).call<ApplyResult>('DELETE', `/v1/vifs/${encodeURIComponent(name)}${o.dryRun ? '?dryRun=true' : ''}`), o.json);
    }));
  withClientOptions(withFields(vif.command('set').description('change a VIF (MAC, MTU, link, filters, coalescing in place; device, segment, queue size, engine replace it)')
    .argument('<name>', 'VIF name').option('--dry-run', 'show what would change').option('--json', 'JSON output')))
    .action(async (name: string, o: ClientOptions & FieldOpts & { dryRun?: boolean; json?: boolean }) => runClient(async () => {
      const body = fields(o);
      if (!Object.keys(body).length) {
        process.stderr.write('svnic: nothing to change: give at least one of --mac, --mtu, --link, --promiscuous, --multicast, --coalesce-*, --segment, ...\n');
        process.exitCode = 2;
        return;
      }
      printResult(await new Client(o).call<ApplyResult>('PATCH', `/v1/vifs/${encodeURIComponent(name)}${o.dryRun ? '?dryRun=true' : ''}`, body), o.json);
    }));
}
