// Typed access to native/svnic_native.cc: Linux system calls Node cannot make (fd passing, mmap as a
// SharedArrayBuffer, eventfd, poll, TUNSETIFF). No policy here or there: callers decide what a
// failure means.
//
// Conventions (the addon enforces them):
// - control-plane calls throw an Error whose `code` is the errno name ("ENOENT", "EACCES", ...);
// - data-path calls return a negative errno (e.g. -native.EAGAIN) instead of throwing;
// - every fd is close-on-exec; sockets come back non-blocking.
//
// The addon is built by `npm install` / `npm ci` (node-gyp, script "install"). It loads in worker
// threads too (context-aware module).

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { SvnicError } from '../hypervisor/errors.js';

export interface RecvResult {
  /** bytes received; 0 means the peer closed the connection */
  bytes: number;
  /** fds written to fdsOut; -1 when control data was truncated (all received fds were closed) */
  nfds: number;
}

export interface NativeApi {
  unixListen(path: string, backlog: number): number;
  unixConnect(path: string): number;
  socketpair(): [number, number];
  accept(fd: number): number;
  recvMsg(fd: number, buf: Uint8Array, fdsOut: Int32Array): RecvResult | number;
  sendMsg(fd: number, buf: Uint8Array, len: number, fds?: number[]): number;
  poll(fds: Int32Array, events: Int16Array, revents: Int16Array, n: number, timeoutMs: number): number;
  eventfd(initval: number, nonblock: boolean): number;
  eventfdWrite(fd: number, value: number): number;
  eventfdRead(fd: number): number;
  memfdCreate(name: string, size: number): number;
  mmapShared(fd: number, length: number, offset: number): SharedArrayBuffer;
  read(fd: number, buf: Uint8Array, off: number, len: number): number;
  write(fd: number, buf: Uint8Array, off: number, len: number): number;
  setNonBlocking(fd: number, on: boolean): void;
  close(fd: number): void;
  tunOpen(name: string, tap: boolean): { fd: number; name: string };
  threadCpuNs(): number;
  readonly POLLIN: number;
  readonly POLLOUT: number;
  readonly POLLERR: number;
  readonly POLLHUP: number;
  readonly POLLNVAL: number;
  readonly EAGAIN: number;
  readonly EINTR: number;
  readonly EBADF: number;
  readonly EFAULT: number;
  readonly EPIPE: number;
  readonly ECONNRESET: number;
}

/** Where node-gyp puts the addon, relative to the package root. */
const ADDON_PATH = 'native/build/Release/svnic_native.node';

function packageRoot(): string {
  // dist/src/native/index.js -> package root is three levels up.
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

let cached: NativeApi | undefined;

/**
 * The native addon. Throws SvnicError NATIVE_MISSING if it was not built (run `npm ci`, which
 * needs python3, make and g++).
 */
export function native(): NativeApi {
  if (cached) return cached;
  const path = join(packageRoot(), ADDON_PATH);
  if (!existsSync(path)) {
    throw new SvnicError(
      'NATIVE_MISSING',
      `the native addon is not built (${path} is missing): run \`npm ci\` or \`npm run install\` (needs python3, make, g++)`,
    );
  }
  cached = createRequire(import.meta.url)(path) as NativeApi;
  return cached;
}

/** True when the addon is built and loadable (for loud skips in tests). */
export function nativeAvailable(): boolean {
  try {
    native();
    return true;
  } catch {
    return false;
  }
}
