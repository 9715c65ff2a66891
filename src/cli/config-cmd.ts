/** `svnic config show|apply|reload`: the desired state of a running daemon (docs/daemon.md). */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { Client, runClient, withClientOptions, type ClientOptions } from './client.js';

interface ApplyResult { generation: number; summary: string[]; dryRun: boolean }

function printResult(r: ApplyResult, json?: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return;
  }
  for (const l of r.summary) process.stdout.write(`${l}\n`);
  process.stdout.write(`${r.dryRun ? 'dry run: nothing changed' : `generation ${r.generation}`}${r.summary.length ? '' : ' (no changes)'}\n`);
}

export function registerConfig(program: Command): void {
  const config = program.command('config').description('show or replace the desired state of a running daemon, or make it reload its config file');
  withClientOptions(config.command('show').description('the desired state as YAML (VIF names and MACs written out), or JSON').option('--json', 'JSON with the generation and the last changes'))
    .action(async (o: ClientOptions & { json?: boolean }) => runClient(async () => {
      const r = await new Client(o).call<{ generation: number; config: unknown }>('GET', '/v1/config');
      process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : `# generation ${r.generation}\n${stringify(r.config)}`);
    }));
  withClientOptions(config.command('apply').description('make FILE (YAML or JSON) the desired state; only the difference is applied')
    .argument('<file>', 'config file').option('--dry-run', 'show what would change').option('--json', 'JSON output'))
    .action(async (file: string, o: ClientOptions & { dryRun?: boolean; json?: boolean }) => runClient(async () => {
      const text = readFileSync(file, 'utf8');
      printResult(await new Client(o).call<ApplyResult>('PUT', `/v1/config${o.dryRun ? '?dryRun=true' : ''}`, text, { contentType: 'application/yaml' }), o.json);
    }));
  withClientOptions(config.command('reload').description('read the daemon\'s config file again and apply it (like SIGHUP)')
    .option('--dry-run', 'show what would change').option('--json', 'JSON output'))
    .action(async (o: ClientOptions & { dryRun?: boolean; json?: boolean }) => runClient(async () => {
      printResult(await new Client(o).call<ApplyResult>('POST', `/v1/reload${o.dryRun ? '?dryRun=true' : ''}`), o.json);
    }));
}
