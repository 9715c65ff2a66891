/** Helpers for daemon tests: a config with long-running traffic guests, and HTTP calls. */
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './tmp.js';

export const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const TRAFFIC = join(ROOT, 'src/guest/programs/traffic.ts');

export function tmp(prefix = 'sv7-'): string {
  return tempDir(`${prefix}${process.pid}-`);
}

/** Two traffic guests (a: a0 with a fixed MAC; b: b0 without one), one device. */
export function daemonConfig(dir: string, o: { pps?: number; extra?: string; uplink?: string } = {}): string {
  const f = join(dir, 'svnic.yaml');
  const pps = o.pps ?? 50;
  writeFileSync(f, [
    `device: { name: dev0, uplink: ${o.uplink ?? 'null'} }`,
    'guests:',
    `  - { name: a, module: ${JSON.stringify(TRAFFIC)}, args: { pps: ${pps} }, vifs: [ { name: a0, mac: "02:00:00:00:00:0a" } ] }`,
    `  - { name: b, module: ${JSON.stringify(TRAFFIC)}, args: { pps: ${pps} }, vifs: [ { name: b0 } ] }`,
    o.extra ?? '',
    '',
  ].join('\n'));
  return f;
}

export interface HttpResult {
  status: number;
  body: Record<string, unknown> & { code?: string; message?: string };
  headers: Headers;
}

/** An HTTP call to the TCP listener. `body` as a string is sent as it is (for malformed JSON). */
export async function http(url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResult> {
  const h: Record<string, string> = { ...headers };
  let payload: string | undefined;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    h['content-type'] ??= 'application/json';
  }
  const r = await fetch(`${url}${path}`, { method, headers: h, body: payload });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // text
  }
  return { status: r.status, body: parsed as HttpResult['body'], headers: r.headers };
}

/**
 * A free UDP port on loopback (bound, read, closed: another process could take it in between,
 * which a test would see as a failed start, never as a wrong result).
 */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}
