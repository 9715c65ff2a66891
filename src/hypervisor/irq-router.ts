/**
 * Interrupt router for `hypervisor` interrupt mode (the paper's design): engines set a VIF's bit in
 * the pending vector of this thread's wake page and raise one master notification; this thread
 * reads the vector and forwards a virtual interrupt to each pending guest (its VIF's interrupt
 * word). It runs in its own worker; the control plane maps VIF slots to their memory.
 */
import { workerData, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { W, drainRung, wake } from '../layout/doorbell.js';
import { H, i32 } from '../layout/vif.js';

export type RouterCommand = { op: 'map'; slot: number; vif: SharedArrayBuffer; wake?: SharedArrayBuffer } | { op: 'unmap'; slot: number } | { op: 'stop' };

const { page, port, spinUs } = workerData as { page: SharedArrayBuffer; port: MessagePort; spinUs: number };
const p = new Int32Array(page);
const headers: (Int32Array | undefined)[] = [];
/** Per slot: a wake page also woken with the interrupt (VifSpec.interruptWake), if any. */
const wakes: (Int32Array | undefined)[] = [];
let running = true;
let forwarded = 0;

function control(): void {
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    const cmd = m.message as RouterCommand;
    if (cmd.op === 'map') {
      headers[cmd.slot] = new Int32Array(cmd.vif, 0, 1024);
      wakes[cmd.slot] = cmd.wake ? new Int32Array(cmd.wake) : undefined;
    } else if (cmd.op === 'unmap') headers[cmd.slot] = wakes[cmd.slot] = undefined;
    else running = false;
    port.postMessage({ type: 'ack', forwarded });
  }
}

const forwardOne = (slot: number): number => {
  const h = headers[slot];
  if (h === undefined) return 0;
  Atomics.add(h, i32(H.IRQ), 1);
  Atomics.notify(h, i32(H.IRQ), 1);
  const w = wakes[slot];
  if (w !== undefined) wake(w);
  return 1;
};

function forward(): number {
  const n = drainRung(p, -1, forwardOne); // only engines write this page: every summary bit is real
  forwarded += n;
  return n;
}

let idleSince = -1;
while (running) {
  if (Atomics.load(p, W.CONTROL) !== 0) {
    Atomics.store(p, W.CONTROL, 0);
    control();
  }
  if (Atomics.load(p, W.SUMMARY) !== 0 && forward() !== 0) {
    idleSince = -1;
    continue;
  }
  const now = performance.now();
  if (idleSince < 0) idleSince = now;
  if ((now - idleSince) * 1000 < spinUs) continue;
  Atomics.store(p, W.SLEEPING, 1);
  const seen = Atomics.load(p, W.WAKE);
  if (Atomics.load(p, W.SUMMARY) === 0 && Atomics.load(p, W.CONTROL) === 0) Atomics.wait(p, W.WAKE, seen, 1000);
  Atomics.store(p, W.SLEEPING, 0);
  idleSince = -1;
}
port.close();
