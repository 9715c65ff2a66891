/** Where the daemon listens and keeps its state by default (overridable by flags and environment). */
import { join } from 'node:path';

/** SVNIC_SOCKET, else /run/svnic/svnicd.sock for root, $XDG_RUNTIME_DIR/svnicd.sock, or /tmp/svnicd-<uid>.sock. */
export function defaultSocketPath(): string {
  if (process.env.SVNIC_SOCKET) return process.env.SVNIC_SOCKET;
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return '/run/svnic/svnicd.sock';
  if (process.env.XDG_RUNTIME_DIR) return join(process.env.XDG_RUNTIME_DIR, 'svnicd.sock');
  return `/tmp/svnicd-${uid}.sock`;
}

const LOOPBACK = /^(127(\.\d{1,3}){3}|::1|\[::1\]|localhost)$/;

/** Parse `host:port` for the TCP listener; only loopback addresses are allowed. */
export function parseListen(v: string): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(v);
  if (!m) throw new Error(`--listen wants host:port (e.g. 127.0.0.1:7480), got "${v}"`);
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
  const port = Number(m[2]);
  if (!LOOPBACK.test(host) && !LOOPBACK.test(m[1]!)) throw new Error(`--listen ${v}: only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed; the API controls the device`);
  if (port > 65535) throw new Error(`--listen ${v}: port must be 0..65535`);
  return { host, port };
}
