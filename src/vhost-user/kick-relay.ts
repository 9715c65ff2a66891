/** Control-plane handle of the kick relay thread (kick-relay-worker.ts). One per process. */
import { Worker, MessageChannel, type MessagePort } from 'node:worker_threads';
import { native } from '../native/index.js';

export class KickRelay {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly ctlFd: number;
  private readonly waiting = new Map<number, () => void>();
  private seq = 1;
  private readonly stats = new SharedArrayBuffer(16);

  constructor() {
    this.ctlFd = native().eventfd(0, true);
    const ch = new MessageChannel();
    this.port = ch.port1;
    this.worker = new Worker(new URL('./kick-relay-worker.js', import.meta.url), {
      workerData: { port: ch.port2, ctlFd: this.ctlFd, stats: this.stats }, transferList: [ch.port2], name: 'svnic-kick-relay',
    });
    this.worker.unref();
    this.port.unref();
    this.port.on('message', (m: { id: number }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      w?.();
    });
  }

  private call(cmd: Record<string, unknown>): Promise<void> {
    const id = this.seq++;
    const p = new Promise<void>((resolve) => this.waiting.set(id, resolve));
    this.port.postMessage({ ...cmd, id });
    native().eventfdWrite(this.ctlFd, 1);
    return p;
  }

  /** Watch `fds` (kick eventfds) and ring `slot` on `doorbell` when one fires. */
  set(key: string, slot: number, doorbell: SharedArrayBuffer, fds: number[]): Promise<void> {
    return this.call({ op: 'set', key, slot, doorbell, fds });
  }

  /** Stop watching the fds of `key`; resolves once the relay no longer polls them. */
  clear(key: string): Promise<void> {
    return this.call({ op: 'clear', key });
  }

  counters(): { kicks: number; badFds: number } {
    const c = new Float64Array(this.stats);
    return { kicks: c[0]!, badFds: c[1]! };
  }

  async stop(): Promise<void> {
    await this.call({ op: 'stop' });
    await this.worker.terminate();
    native().close(this.ctlFd);
  }
}
