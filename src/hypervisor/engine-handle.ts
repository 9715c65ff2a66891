/** The control plane's handle on one engine worker: request/acknowledge over its MessagePort. */
import { Worker, MessageChannel, type MessagePort } from 'node:worker_threads';
import { W } from '../layout/doorbell.js';
import type { EngineConfig } from '../device/engine.js';
import type { EngineCommand, EngineReply } from '../device/engine-protocol.js';
import { SvnicError } from './errors.js';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class EngineHandle {
  readonly index: number;
  readonly doorbell: SharedArrayBuffer;
  private readonly db: Int32Array;
  private readonly ctl: Int32Array;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly pending = new Map<number, Pending>();
  private nextReq = 1;
  private failed: Error | null = null;
  readonly exited: Promise<void>;
  onEvent: (e: Extract<EngineReply, { type: 'event' }>['event']) => void = () => {};

  constructor(cfg: EngineConfig) {
    this.index = cfg.index;
    this.doorbell = cfg.doorbell;
    this.db = new Int32Array(cfg.doorbell);
    this.ctl = new Int32Array(cfg.control);
    const ch = new MessageChannel();
    this.port = ch.port1;
    this.worker = new Worker(new URL('../device/engine-worker.js', import.meta.url), {
      workerData: { cfg, port: ch.port2 },
      transferList: [ch.port2],
      name: `svnic-engine-${cfg.index}`,
    });
    this.port.on('message', (m: EngineReply) => {
      if (m.type === 'event') return this.onEvent(m.event);
      const p = this.pending.get(m.reqId);
      if (!p) return;
      this.pending.delete(m.reqId);
      if (m.error) p.reject(new SvnicError('ENGINE_FAILED', `engine ${this.index} refused a command: ${m.error}`));
      else p.resolve(m.result);
    });
    this.exited = new Promise((resolve) => {
      this.worker.on('error', (e) => this.fail(e));
      this.worker.on('exit', () => {
        this.fail(new Error('engine exited'));
        this.port.close();
        resolve();
      });
    });
  }

  private fail(e: Error): void {
    if (!this.failed) this.failed = e;
    for (const p of this.pending.values()) {
      p.reject(new SvnicError('ENGINE_FAILED', `engine ${this.index} stopped (${e.message}); stop and recreate the device`));
    }
    this.pending.clear();
  }

  /** Send a command and wait for the engine to apply it between two loop iterations. */
  call<T = unknown>(cmd: DistributiveOmit<EngineCommand, 'reqId'>): Promise<T> {
    if (this.failed) return Promise.reject(new SvnicError('ENGINE_FAILED', `engine ${this.index} is not running; recreate the device`));
    const reqId = this.nextReq++;
    const p = new Promise<T>((resolve, reject) => this.pending.set(reqId, { resolve: resolve as (v: unknown) => void, reject }));
    this.port.postMessage({ ...cmd, reqId });
    Atomics.store(this.ctl, W.CONTROL, 1); // private page: no guest can hide this from the engine
    Atomics.add(this.db, W.WAKE, 1);
    Atomics.notify(this.db, W.WAKE, 1);
    return p;
  }

  async stop(): Promise<void> {
    if (!this.failed) await this.call({ op: 'stop' }).catch(() => {});
    await this.exited;
  }
}
