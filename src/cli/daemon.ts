/** `svnic daemon` (also the `svnicd` command): run the device as a service; docs/daemon.md. */
import { InvalidArgumentError, type Command } from 'commander';
import { startDaemon } from '../daemon/daemon.js';
import { parseListen } from '../daemon/paths.js';
import { ConfigError } from '../config/issues.js';

interface DaemonCliOptions {
  config?: string;
  socket?: string;
  listen?: { host: string; port: number };
  tokenFile?: string;
  stateDir?: string;
  persist: boolean;
}

const listen = (v: string) => {
  try {
    return parseListen(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
};

export function registerDaemon(program: Command): void {
  program
    .command('daemon')
    .description('run devices, guests and VIFs as a service with a REST API, metrics and a dashboard (also: svnicd)')
    .option('-c, --config <file>', 'config file (docs/config.md); reloaded on SIGHUP')
    .option('--socket <path>', 'unix socket of the API (mode 0600; env SVNIC_SOCKET)')
    .option('--listen <host:port>', 'also serve the API and dashboard on this loopback TCP address (mutating calls need the token)', listen)
    .option('--token-file <file>', 'bearer token for --listen (created, mode 0600, if missing; default <state-dir>/token)')
    .option('--state-dir <dir>', 'where the desired state is saved for restarts (env SVNIC_STATE_DIR)')
    .option('--no-persist', 'do not save or restore state')
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .addHelpText('after', `
The daemon applies the config, then changes only what differs on SIGHUP (the file again),
PUT /v1/config, or the VIF calls (svnic vif add|rm|set). An invalid config changes nothing.
After SIGKILL, starting it again with the same config brings back the same VIFs (names, MACs,
settings, including changes made through the API); see docs/daemon.md.

Examples:
  $ svnic daemon --config examples/svnic-daemon.yaml
  $ svnicd -c svnic.yaml --listen 127.0.0.1:7480     # dashboard at http://127.0.0.1:7480/
  $ kill -HUP $(pidof svnicd)                          # reload the config file`)
    .action(async (opts: DaemonCliOptions) => {
      const log = (m: string) => process.stderr.write(`svnicd: ${m}\n`);
      let d: Awaited<ReturnType<typeof startDaemon>>;
      try {
        d = await startDaemon({ config: opts.config, socket: opts.socket, listen: opts.listen, tokenFile: opts.tokenFile, stateDir: opts.stateDir, persist: opts.persist, log });
      } catch (e) {
        if (e instanceof ConfigError) {
          process.stderr.write(`${e.message}\n`);
          log('the config is invalid; nothing was started');
          process.exit(2);
        }
        log(`could not start: ${(e as Error).message}`);
        process.exit(1);
      }
      process.on('SIGHUP', () => {
        log('SIGHUP: reloading the config file');
        d.ctl.reload().catch((e: Error & { code?: string }) => log(`reload refused (${e.code ?? 'ERROR'}); nothing changed:\n${e.message}`));
      });
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) {
          log(`${sig} again: exiting at once`);
          process.exit(130);
        }
        stopping = true;
        log(`${sig}: stopping`);
        void d.close().then(() => {
          log('stopped');
          process.exit(0);
        });
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      // (after the signal handlers are in place) The line tests and scripts wait for (stdout): where to reach the daemon.
      process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, socket: d.socket, url: d.url ?? null, tokenFile: d.tokenFile ?? null, generation: d.ctl.generation })}\n`);
    });
}
