/**
 * What a guest program sees: `export default async function main(ctx: GuestContext)`. The context
 * delivers the VIFs the hypervisor grants (hot-plug), tells the program when one is unplugged, and
 * carries control messages both ways. Control messages need the event loop: a guest that
 * busy-polls for long stretches calls `checkControl()` now and then.
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { VirtioNetDriver, type VifGrant } from './driver.js';

export type ToGuest =
  | { type: 'grant'; grant: VifGrant }
  | { type: 'revoke'; vifId: string }
  | { type: 'user'; data: unknown };

export type FromGuest =
  | { type: 'ready' }
  | { type: 'granted'; vifId: string }
  | { type: 'revoked'; vifId: string }
  | { type: 'report'; data: unknown }
  | { type: 'done'; result: unknown }
  | { type: 'failed'; error: string };

export class GuestContext {
  readonly nics = new Map<string, VirtioNetDriver>();
  private vifWaiters: ((d: VirtioNetDriver) => void)[] = [];
  private unclaimed: VirtioNetDriver[] = [];
  private messages: unknown[] = [];
  private messageWaiters: ((m: unknown) => void)[] = [];
  private unplugHandlers: ((d: VirtioNetDriver) => void)[] = [];

  constructor(readonly id: string, readonly args: Record<string, unknown>, private readonly port: MessagePort) {
    port.on('message', (m: ToGuest) => this.handle(m));
  }

  /** The next VIF granted to this guest (one not yet returned by an earlier call). */
  vif(): Promise<VirtioNetDriver> {
    const d = this.unclaimed.shift();
    if (d) return Promise.resolve(d);
    return new Promise((resolve) => this.vifWaiters.push(resolve));
  }

  onUnplug(fn: (d: VirtioNetDriver) => void): void {
    this.unplugHandlers.push(fn);
  }

  /** Send a report to the hypervisor (Guest 'report' event). */
  report(data: unknown): void {
    this.port.postMessage({ type: 'report', data } satisfies FromGuest);
  }

  /** The next message the hypervisor sent with guest.send(). */
  message<T = unknown>(): Promise<T> {
    if (this.messages.length) return Promise.resolve(this.messages.shift() as T);
    return new Promise((resolve) => this.messageWaiters.push(resolve as (m: unknown) => void));
  }

  /** Process pending control messages synchronously (for guests that do not yield). */
  checkControl(): void {
    for (let m = receiveMessageOnPort(this.port); m !== undefined; m = receiveMessageOnPort(this.port)) this.handle(m.message as ToGuest);
  }

  private handle(m: ToGuest): void {
    if (m.type === 'grant') {
      const d = new VirtioNetDriver(m.grant);
      this.nics.set(d.id, d);
      const w = this.vifWaiters.shift();
      if (w) w(d);
      else this.unclaimed.push(d);
      this.port.postMessage({ type: 'granted', vifId: d.id } satisfies FromGuest);
    } else if (m.type === 'revoke') {
      const d = this.nics.get(m.vifId);
      if (d) {
        d.unplugged = true;
        this.nics.delete(m.vifId);
        this.unclaimed = this.unclaimed.filter((x) => x !== d);
        for (const fn of this.unplugHandlers) fn(d);
      }
      this.port.postMessage({ type: 'revoked', vifId: m.vifId } satisfies FromGuest);
    } else {
      const w = this.messageWaiters.shift();
      if (w) w(m.data);
      else this.messages.push(m.data);
    }
  }

  close(): void {
    this.port.close();
  }
}
