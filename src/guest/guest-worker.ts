/** Worker entry of an isolate guest: load the user's module and run its main(ctx). */
import { workerData, type MessagePort } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import { GuestContext, type FromGuest } from './context.js';

const { module, args, guestId, port } = workerData as {
  module: string; args: Record<string, unknown>; guestId: string; port: MessagePort;
};
const ctx = new GuestContext(guestId, args, port);
const url = module.startsWith('file:') ? module : pathToFileURL(isAbsolute(module) ? module : resolve(module)).href;
try {
  const mod = (await import(url)) as { default?: unknown; main?: unknown };
  const main = (mod.default ?? mod.main) as ((c: GuestContext) => unknown) | undefined;
  if (typeof main !== 'function') throw new Error(`guest module ${module} must export a default function main(ctx)`);
  port.postMessage({ type: 'ready' } satisfies FromGuest);
  const result = await main(ctx);
  port.postMessage({ type: 'done', result: result ?? null } satisfies FromGuest);
} catch (e) {
  port.postMessage({ type: 'failed', error: (e as Error).stack ?? String(e) } satisfies FromGuest);
}
ctx.close();
