/**
 * svnicd: the long-running device. It applies the config file (or the state saved by an earlier
 * run, state.ts), serves the API on a unix socket (mode 0600) and optionally on a loopback TCP port
 * (bearer token for mutating calls), samples counters for rates, and reloads on SIGHUP.
 * SIGTERM / SIGINT stop guests, uplinks and devices and remove the socket.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Controller } from './controller.js';
import { Sampler } from './sampler.js';
import { createMetrics } from './metrics.js';
import { buildApp } from './api.js';
import { newToken } from './auth.js';
import { defaultStateDir, stateFilePath } from './state.js';
import { defaultSocketPath } from './paths.js';

export interface DaemonOptions {
  config?: string;
  socket?: string;
  /** Loopback TCP listener. */
  listen?: { host: string; port: number };
  /** Token for the TCP listener: read from this file, or created in it (mode 0600) if missing. */
  tokenFile?: string;
  stateDir?: string;
  /** false: do not persist state. */
  persist?: boolean;
  sampleMs?: number;
  log?: (msg: string) => void;
}

export interface Daemon {
  ctl: Controller;
  sampler: Sampler;
  socket: string;
  /** http://host:port of the TCP listener, if any. */
  url?: string;
  tokenFile?: string;
  close(): Promise<void>;
}

/** A socket file left by a daemon that was killed is removed; one that answers is another daemon. */
async function clearStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket; remove it or choose another --socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`another svnicd is listening on ${path}; stop it first or choose another --socket`);
  unlinkSync(path);
}

function readOrCreateToken(file: string, log: (m: string) => void): string {
  if (existsSync(file)) {
    const t = readFileSync(file, 'utf8').trim();
    if (t.length < 16) throw new Error(`${file}: the token must be at least 16 characters`);
    return t;
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const t = newToken();
  writeFileSync(file, `${t}\n`, { mode: 0o600 });
  log(`created an API token in ${file} (mode 0600)`);
  return t;
}

/** Progress lines go to the daemon's log. */
const logStream = (log: (m: string) => void) => ({ write: (s: string) => (log(s.trimEnd()), true) }) as unknown as NodeJS.WritableStream;

export async function startDaemon(o: DaemonOptions): Promise<Daemon> {
  const log = o.log ?? ((m: string) => process.stderr.write(`svnicd: ${m}\n`));
  const stateDir = o.stateDir ?? defaultStateDir();
  const stateFile = o.persist === false ? undefined : stateFilePath(stateDir, o.config ?? '(no config file)');
  let sampler: Sampler | null = null;
  const ctl = new Controller({ configFile: o.config, stateFile, log, progress: { prefix: '', tty: false, stream: logStream(log) }, onApplied: () => {
    try {
      sampler?.sample();
    } catch {
      // the next periodic sample will do
    }
  } });
  const startedAt = Date.now();
  const socket = o.socket ?? defaultSocketPath();

  ctl.runtime.log = log;
  await ctl.start();
  sampler = new Sampler(ctl.runtime);
  sampler.start(o.sampleMs ?? 1000, (e) => log(`counter sample skipped: ${e.message}`));
  const metrics = createMetrics(ctl, sampler);

  const apps: FastifyInstance[] = [];
  try {
    const unixApp = await buildApp({ ctl, sampler, metrics, token: null, log, startedAt });
    apps.push(unixApp);
    mkdirSync(dirname(socket), { recursive: true, mode: 0o700 });
    await clearStaleSocket(socket);
    const oldMask = process.umask(0o177); // the socket is created 0600; chmod below makes sure
    try {
      await unixApp.listen({ path: socket });
    } finally {
      process.umask(oldMask);
    }
    chmodSync(socket, 0o600);
    log(`API on unix socket ${socket} (mode 0600)`);

    let url: string | undefined;
    let tokenFile: string | undefined;
    if (o.listen) {
      const fromEnv = process.env.SVNIC_TOKEN && !o.tokenFile ? process.env.SVNIC_TOKEN : undefined;
      if (fromEnv !== undefined && fromEnv.length < 16) throw new Error('SVNIC_TOKEN must be at least 16 characters');
      tokenFile = fromEnv !== undefined ? undefined : o.tokenFile ?? join(stateDir, 'token');
      const token = fromEnv ?? readOrCreateToken(tokenFile!, log);
      const tcpApp = await buildApp({ ctl, sampler, metrics, token, log, startedAt });
      apps.push(tcpApp);
      await tcpApp.listen({ host: o.listen.host, port: o.listen.port });
      const addr = tcpApp.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : o.listen.port;
      const host = o.listen.host.includes(':') ? `[${o.listen.host}]` : o.listen.host;
      url = `http://${host}:${port}`;
      log(`API and dashboard on ${url}/ (mutating calls need the bearer token ${tokenFile ? `in ${tokenFile}` : 'from SVNIC_TOKEN'})`);
    }

    let closing: Promise<void> | null = null;
    const close = (): Promise<void> => {
      closing ??= (async () => {
        sampler.stop();
        await Promise.all(apps.map((a) => a.close().catch(() => {})));
        try {
          unlinkSync(socket);
        } catch {
          // already gone
        }
        await ctl.stop();
      })();
      return closing;
    };
    return { ctl, sampler, socket, url, tokenFile, close };
  } catch (e) {
    sampler.stop();
    await Promise.all(apps.map((a) => a.close().catch(() => {})));
    await ctl.stop();
    throw e;
  }
}
