/**
 * A VIF exposed as a vhost-user socket: svnic listens on `socket` (QEMU connects as the client,
 * its default) or, in client mode, connects to a QEMU started with `server=on` and reconnects when
 * that QEMU goes away. One front-end at a time; a second connection is refused (counted).
 *
 * The socket is read on the main thread, non-blocking, from a 1 ms timer: the control protocol is
 * a few dozen messages per VM start, never on the data path. Messages are handled one at a time
 * (a session may wait for its engine), in order.
 *
 * When the front-end goes away (EOF, error, or a malformed message the session refuses), the
 * session stops the device and closes every fd; the VIF stays and waits for the next connection
 * (QEMU restarted, or `reconnect` in client mode). Other VIFs never notice.
 */
import { EventEmitter } from 'node:events';
import { existsSync, unlinkSync } from 'node:fs';
import { native } from '../native/index.js';
import { HDR_BYTES, MAX_PAYLOAD, type Message } from './protocol.js';
import { VhostUserSession, SESSION_COUNTERS, VHOST_DEVICE_FEATURES, VHOST_OFFLOAD_FEATURES, type SessionBackend, type SessionCounter, type VmRings } from './session.js';
import type { KickRelay } from './kick-relay.js';
import type { Device, Vif } from '../hypervisor/device.js';
import { SvnicError } from '../hypervisor/errors.js';

export interface VhostUserPortOptions {
  socket: string;
  /** 'server' (svnic listens; default) or 'client' (svnic connects to QEMU's server=on socket). */
  mode?: 'server' | 'client';
  reconnectMs?: number;
  /** Offer checksum/TSO offloads (session.ts VHOST_OFFLOAD_FEATURES). */
  offloads?: boolean;
}

export type PortCounter = SessionCounter | 'connections' | 'disconnects' | 'refused_connections' | 'truncated_fds' | 'oversize';

export class VhostUserPort extends EventEmitter {
  readonly socket: string;
  readonly mode: 'server' | 'client';
  readonly offloads: boolean;
  readonly counters = Object.fromEntries([...SESSION_COUNTERS, 'connections', 'disconnects', 'refused_connections', 'truncated_fds', 'oversize'].map((c) => [c, 0])) as Record<PortCounter, number>;
  private listenFd = -1;
  private connFd = -1;
  private session: VhostUserSession | null = null;
  private readonly buf = new Uint8Array(HDR_BYTES + MAX_PAYLOAD);
  private queue: Message[] = [];
  private have = 0;
  private pendingFds: number[] = [];
  private readonly fdsOut = new Int32Array(16);
  private busy = false;
  private timer: NodeJS.Timeout;
  private nextConnect = 0;
  private closed = false;
  private disconnecting: Promise<void> | null = null;
  /** Last error seen while tearing a connection down (for logs). */
  lastError = '';

  constructor(private readonly device: Device, readonly vif: Vif, private readonly relay: KickRelay, opts: VhostUserPortOptions) {
    super();
    this.socket = opts.socket;
    this.mode = opts.mode ?? 'server';
    this.offloads = opts.offloads ?? false;
    const reconnectMs = opts.reconnectMs ?? 200;
    if (this.mode === 'server') {
      if (existsSync(this.socket)) unlinkSync(this.socket);
      try {
        this.listenFd = native().unixListen(this.socket, 4);
      } catch (e) {
        throw new SvnicError('VHOST_USER', `cannot listen on ${this.socket}: ${(e as Error).message}; check the directory exists and is writable`);
      }
    }
    this.timer = setInterval(() => this.tick(reconnectMs), 1);
  }

  /** Is a front-end connected and the device running? */
  get running(): boolean {
    return this.session?.running ?? false;
  }

  get connected(): boolean {
    return this.connFd >= 0;
  }

  private tick(reconnectMs: number): void {
    if (this.busy || this.closed || this.disconnecting) return; // one session at a time, old one fully stopped
    const n = native();
    if (this.mode === 'server' && this.listenFd >= 0) {
      for (let fd = n.accept(this.listenFd); fd >= 0; fd = n.accept(this.listenFd)) {
        if (this.connFd >= 0) {
          this.counters.refused_connections++;
          n.close(fd);
        } else this.attach(fd);
      }
    } else if (this.mode === 'client' && this.connFd < 0 && Date.now() >= this.nextConnect) {
      this.nextConnect = Date.now() + reconnectMs;
      try {
        this.attach(n.unixConnect(this.socket));
      } catch {
        /* QEMU not (yet) listening: retry after reconnectMs */
      }
    }
    if (this.connFd >= 0) this.readAvailable();
  }

  private attach(fd: number): void {
    this.connFd = fd;
    this.counters.connections++;
    this.have = 0;
    this.session = new VhostUserSession(this.backend(), this.offloads ? [...VHOST_DEVICE_FEATURES, ...VHOST_OFFLOAD_FEATURES] : VHOST_DEVICE_FEATURES);
    this.emit('connected');
  }

  private backend(): SessionBackend {
    const n = native();
    const key = `vif-${this.vif.slot}`;
    return {
      mmap: (fd, len, off) => n.mmapShared(fd, len, off),
      close: (fd) => n.close(fd),
      start: async (rings: VmRings, kicks: [number, number]) => {
        await this.device.engineCall(this.vif, { op: 'vm-start', slot: this.vif.slot, rings });
        await this.relay.set(key, this.vif.slot, this.device.engineDoorbell(this.vif.engine), kicks.filter((k) => k >= 0));
        this.emit('started');
      },
      stop: async () => {
        await this.relay.clear(key);
        const bases = await this.device.engineCall<[number, number]>(this.vif, { op: 'vm-stop', slot: this.vif.slot });
        this.emit('stopped');
        return bases;
      },
    };
  }

  /**
   * Read whole messages: first exactly the 12-byte header, then exactly its payload. A unix stream
   * read may merge several messages and their fds, so reading message by message is what ties
   * each message's fds to it (they arrive with its first byte).
   */
  private readAvailable(): void {
    const n = native();
    for (;;) {
      const want = this.have < HDR_BYTES ? HDR_BYTES : HDR_BYTES + new DataView(this.buf.buffer).getUint32(8, true);
      if (want > HDR_BYTES + MAX_PAYLOAD) {
        this.counters.oversize++;
        void this.disconnect();
        return;
      }
      if (this.have === want) {
        const dv = new DataView(this.buf.buffer);
        const payload = this.buf.slice(HDR_BYTES, want);
        this.queue.push({ request: dv.getUint32(0, true), flags: dv.getUint32(4, true), payload: new DataView(payload.buffer), fds: this.pendingFds });
        this.pendingFds = [];
        this.have = 0;
        continue;
      }
      const r = n.recvMsg(this.connFd, this.buf.subarray(this.have, want), this.fdsOut);
      if (typeof r === 'number') {
        if (r === -n.EAGAIN || r === -n.EINTR) break;
        void this.disconnect();
        return;
      }
      if (r.bytes === 0) {
        void this.disconnect();
        return;
      }
      if (r.nfds < 0) {
        this.counters.truncated_fds++;
        void this.disconnect();
        return;
      }
      for (let i = 0; i < r.nfds; i++) this.pendingFds.push(this.fdsOut[i]!);
      this.have += r.bytes;
    }
    void this.drain();
  }

  /** Handle queued messages one at a time, in order. */
  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.connFd >= 0 && this.session && this.queue.length !== 0) {
        const m = this.queue.shift()!;
        const before = { ...this.session.counters };
        const out = await this.session.handle(m);
        for (const c of SESSION_COUNTERS) this.counters[c] += this.session.counters[c] - before[c];
        if (out.reply && this.connFd >= 0) native().sendMsg(this.connFd, out.reply, out.reply.length);
        if (out.close) {
          this.emit('violation', this.session.lastError);
          await this.disconnect();
          return;
        }
      }
    } finally {
      this.busy = false;
    }
  }

  /** The front-end went away: stop the device, close everything, wait for the next one. */
  private disconnect(): Promise<void> {
    if (this.disconnecting) return this.disconnecting;
    if (this.connFd < 0) return Promise.resolve();
    const n = native();
    n.close(this.connFd);
    this.connFd = -1;
    for (const fd of this.pendingFds) n.close(fd);
    for (const m of this.queue) for (const fd of m.fds) n.close(fd);
    this.pendingFds = [];
    this.queue = [];
    this.have = 0;
    this.counters.disconnects++;
    const s = this.session;
    this.session = null;
    // Never rejects: a device stopped meanwhile has nothing left to stop.
    this.disconnecting = (s ? s.close() : Promise.resolve())
      .catch((e: Error) => void (this.lastError = e.message))
      .then(() => {
        this.disconnecting = null;
        this.emit('disconnected');
      });
    return this.disconnecting;
  }

  /** Stop serving: wait for a message in flight, disconnect, stop listening. Call before device.stop(). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.busy) await new Promise((r) => setTimeout(r, 1));
    await this.disconnect();
    clearInterval(this.timer);
    if (this.listenFd >= 0) native().close(this.listenFd);
    this.listenFd = -1;
    if (this.mode === 'server' && existsSync(this.socket)) unlinkSync(this.socket);
  }
}
