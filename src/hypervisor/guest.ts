/** The hypervisor's handle on one isolate guest (a worker thread running a user module). */
import { EventEmitter } from 'node:events';
import { Worker, MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { FromGuest, ToGuest } from '../guest/context.js';
import type { Vif } from './device.js';
import { SvnicError } from './errors.js';

export interface GuestOptions {
  /** Path (or file: URL) of an ES module whose default export is `async main(ctx)`. */
  module: string;
  args?: Record<string, unknown>;
  name?: string;
}

export class Guest extends EventEmitter {
  readonly id: string;
  readonly vifs = new Set<Vif>();
  readonly reports: unknown[] = [];
  result: unknown = undefined;
  error: string | null = null;
  exitCode: number | null = null;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  readonly exited: Promise<number>;
  private acks = new Map<string, () => void>();

  constructor(id: string, opts: GuestOptions) {
    super();
    this.id = id;
    const ch = new MessageChannel();
    this.port = ch.port1;
    this.worker = new Worker(new URL('../guest/guest-worker.js', import.meta.url), {
      workerData: { module: opts.module, args: opts.args ?? {}, guestId: id, port: ch.port2 },
      transferList: [ch.port2],
      name: `svnic-guest-${id}`,
    });
    this.port.on('message', (m: FromGuest) => this.onMessage(m));
    this.exited = new Promise((resolve) => {
      this.worker.on('error', (e) => {
        this.error ??= e.stack ?? e.message;
      });
      this.worker.on('exit', (code) => {
        // Messages the guest posted just before exiting may still be queued on the port.
        for (let m = receiveMessageOnPort(this.port); m !== undefined; m = receiveMessageOnPort(this.port)) this.onMessage(m.message as FromGuest);
        this.exitCode = code;
        this.port.close();
        for (const a of this.acks.values()) a();
        this.acks.clear();
        this.emit('exit', code);
        resolve(code);
      });
    });
  }

  private onMessage(m: FromGuest): void {
    switch (m.type) {
      case 'ready':
        this.emit('ready');
        break;
      case 'granted':
      case 'revoked':
        this.acks.get(`${m.type}:${m.vifId}`)?.();
        break;
      case 'report':
        this.reports.push(m.data);
        this.emit('report', m.data);
        break;
      case 'done':
        this.result = m.result;
        this.emit('done', m.result);
        break;
      case 'failed':
        this.error = m.error;
        this.emit('failed', m.error);
        break;
    }
  }

  get running(): boolean {
    return this.exitCode === null;
  }

  /** Wait until the guest has loaded its module. */
  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.once('ready', resolve);
      this.once('failed', (e: string) => reject(new SvnicError('GUEST_FAILED', `guest ${this.id} failed to start: ${e}`)));
      this.exited.then(() => reject(new SvnicError('GUEST_EXITED', `guest ${this.id} exited before it was ready`)));
    });
  }

  /**
   * Post a control message and wait for the guest's acknowledgement, its exit, or `ackTimeoutMs`
   * (a guest that never yields to its event loop cannot acknowledge; the control plane goes on).
   */
  post(m: ToGuest, ack?: string, ackTimeoutMs = 2000): Promise<void> {
    if (!this.running) return Promise.reject(new SvnicError('GUEST_EXITED', `guest ${this.id} has exited`));
    const p = ack
      ? new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.acks.delete(ack);
          resolve();
        }, ackTimeoutMs);
        this.acks.set(ack, () => {
          clearTimeout(t);
          resolve();
        });
      })
      : Promise.resolve();
    this.port.postMessage(m);
    return p;
  }

  /** Send a user message; the guest reads it with ctx.message(). */
  send(data: unknown): void {
    if (this.running) this.port.postMessage({ type: 'user', data } satisfies ToGuest);
  }

  /** The next report that satisfies `pred` (including one already received). */
  report<T = unknown>(pred: (r: T) => boolean = () => true): Promise<T> {
    const seen = (this.reports as T[]).find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const on = (r: T) => {
        if (pred(r)) {
          this.off('report', on);
          resolve(r);
        }
      };
      this.on('report', on);
      this.exited.then(() => reject(new SvnicError('GUEST_EXITED', `guest ${this.id} exited before reporting${this.error ? `: ${this.error}` : ''}`)));
    });
  }

  /** Wait for main(ctx) to return; its result. */
  async done(): Promise<unknown> {
    if (this.result !== undefined) return this.result;
    return new Promise((resolve, reject) => {
      this.once('done', resolve);
      this.once('failed', (e: string) => reject(new SvnicError('GUEST_FAILED', `guest ${this.id} failed: ${e}`)));
      this.exited.then(() => (this.result !== undefined ? resolve(this.result) : reject(new SvnicError('GUEST_EXITED', `guest ${this.id} exited${this.error ? `: ${this.error}` : ''}`))));
    });
  }

  /** Kill the worker (like destroying a VM); the hypervisor reclaims its VIFs. */
  async terminate(): Promise<void> {
    await this.worker.terminate();
    await this.exited;
  }
}
