/**
 * The CLI's side of the daemon API: HTTP over the unix socket (default) or a loopback URL with a
 * bearer token. Errors from the daemon come back as ClientError with the API's code.
 *
 *   --socket PATH  (env SVNIC_SOCKET)         default: see daemon/paths.ts
 *   --url URL      (env SVNIC_URL)            e.g. http://127.0.0.1:7480
 *   --token-file F (env SVNIC_TOKEN / SVNIC_TOKEN_FILE) for mutating calls over --url
 */
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { defaultSocketPath } from '../daemon/paths.js';

export interface ClientOptions {
  socket?: string;
  url?: string;
  tokenFile?: string;
}

export class ClientError extends Error {
  constructor(readonly code: string, message: string, readonly status: number, readonly body: unknown) {
    super(message);
  }
}

/** Add the connection options to a command. */
export function withClientOptions(cmd: Command): Command {
  return cmd
    .option('--socket <path>', 'the daemon\'s unix socket (env SVNIC_SOCKET)')
    .option('--url <url>', 'the daemon\'s loopback TCP address instead, e.g. http://127.0.0.1:7480 (env SVNIC_URL)')
    .option('--token-file <file>', 'bearer token for changes over --url (env SVNIC_TOKEN_FILE, or SVNIC_TOKEN)');
}

export class Client {
  private readonly socket?: string;
  private readonly base?: URL;
  private readonly token?: string;

  constructor(o: ClientOptions = {}) {
    const url = o.url ?? process.env.SVNIC_URL;
    if (url) this.base = new URL(url);
    else this.socket = o.socket ?? defaultSocketPath();
    const tf = o.tokenFile ?? process.env.SVNIC_TOKEN_FILE;
    this.token = tf ? readFileSync(tf, 'utf8').trim() : process.env.SVNIC_TOKEN;
  }

  get where(): string {
    return this.base ? this.base.href : this.socket!;
  }

  /** `raw`: send `body` (a string) as it is, with this content type (YAML for PUT /v1/config). */
  async call<T = unknown>(method: string, path: string, body?: unknown, raw?: { contentType: string }): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(raw ? String(body) : JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload) {
      headers['content-type'] = raw?.contentType ?? 'application/json';
      headers['content-length'] = String(payload.length);
    }
    if (this.token && this.base) headers.authorization = `Bearer ${this.token}`;
    const opts = this.base
      ? { host: this.base.hostname.replace(/^\[(.*)\]$/, '$1'), port: this.base.port || 80, path, method, headers }
      : { socketPath: this.socket, path, method, headers };
    const { status, text, type } = await new Promise<{ status: number; text: string; type: string }>((resolve, reject) => {
      const req = request(opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), type: String(res.headers['content-type'] ?? '') }));
        res.on('error', reject);
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
          reject(new ClientError('NO_DAEMON', `no svnicd at ${this.where} (${e.code}); start one with \`svnic daemon --config FILE\` or pass --socket/--url`, 0, null));
        } else reject(e);
      });
      req.end(payload);
    });
    const parsed: unknown = type.includes('json') && text ? JSON.parse(text) : text;
    if (status >= 400) {
      const b = parsed as { code?: string; message?: string };
      throw new ClientError(b?.code ?? `HTTP_${status}`, b?.message ?? String(text), status, parsed);
    }
    return parsed as T;
  }
}

/** Run a CLI action: print a ClientError as `svnic: CODE: message` and set the exit status (1). */
export async function runClient(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof ClientError) {
      process.stderr.write(`svnic: ${e.code}: ${e.message}\n`);
      process.exitCode = e.status >= 400 && e.status < 500 ? 1 : 3;
      return;
    }
    throw e;
  }
}
