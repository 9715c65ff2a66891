/**
 * Run a NetStack on a VIF: receive frames from the VirtioNetDriver, hand them to the stack, run
 * its timers, and sleep in the driver's interrupt wait (without blocking the guest's event loop,
 * so UDP sockets, pings and control messages keep working).
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { parseMac } from '../../device/mac-table.js';
import type { VirtioNetDriver } from '../driver.js';
import { NetStack, type NetLink, type NetOptions } from './stack.js';

export function nicLink(nic: VirtioNetDriver): NetLink {
  // Frames are published (and the device kicked) once per synchronous burst, not per frame: the
  // first transmit of a burst schedules one flush as a microtask (virtio 1.2, 2.7.13: batch, then
  // notify).
  let flushPending = false;
  const flush = (): void => {
    flushPending = false;
    nic.flush();
  };
  return {
    get mac() {
      return parseMac(nic.mac)!;
    },
    get mtu() {
      return nic.mtu;
    },
    transmit(frame: Uint8Array, len: number): boolean {
      if (len > nic.maxFrame) return false;
      const slot = nic.reserveTx();
      if (slot < 0) return false;
      nic.bytes.set(frame.subarray(0, len), nic.txOffset(slot));
      nic.commitTx(slot, len);
      if (!flushPending) {
        flushPending = true;
        queueMicrotask(flush);
      }
      return true;
    },
  };
}

export interface RunningStack {
  stack: NetStack;
  /** Resolves when the loop ends (stop() or the VIF is unplugged). */
  done: Promise<void>;
  stop(): void;
}

/** Start a stack on `nic`; its loop runs until stop() or unplug. */
export function startStack(nic: VirtioNetDriver, opts: NetOptions): RunningStack {
  const stack = new NetStack(nicLink(nic), opts);
  let running = true;
  const done = (async () => {
    while (running && !nic.unplugged) {
      const n = nic.receive(64);
      for (let i = 0; i < n; i++) stack.input(nic.bytes, nic.frameOffset(i), nic.frameLength(i));
      if (n !== 0) nic.release();
      stack.tick();
      if (n !== 0) await yieldToLoop();
      else await nic.wait(Math.max(1, Math.min(100, stack.msToNextTick())));
    }
  })();
  return { stack, done, stop: () => (running = false) };
}
