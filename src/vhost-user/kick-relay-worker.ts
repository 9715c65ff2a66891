/**
 * Kick relay thread: turns VM kicks (eventfds QEMU writes when the guest driver notifies a ring)
 * into engine doorbells. It blocks in poll(2) on every kick eventfd plus its own control eventfd,
 * and for each readable kick drains the eventfd and rings the VIF's bit on its engine's doorbell
 * page (layout/doorbell.ts: bit + SUMMARY + wake if sleeping). Engines cannot wait on fds (they
 * sleep in Atomics.wait), so one relay thread serves every VM VIF of the process.
 *
 * Control (MessagePort, drained when the control eventfd fires): {op:'set', id, key, slot,
 * doorbell, fds} replaces the kick fds of `key`; {op:'clear', id, key}; {op:'stop', id}. Each is
 * acknowledged with {id} once the relay no longer polls fds it was told to forget, so the owner may
 * close them afterwards.
 */
import { workerData, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { native } from '../native/index.js';
import { ring } from '../layout/doorbell.js';

interface Entry { fd: number; page: Int32Array; slot: number; key: string }
type Cmd = { id: number } & ({ op: 'set'; key: string; slot: number; doorbell: SharedArrayBuffer; fds: number[] } | { op: 'clear'; key: string } | { op: 'stop' });

const { port, ctlFd, stats } = workerData as { port: MessagePort; ctlFd: number; stats: SharedArrayBuffer };
const n = native();
const counts = new Float64Array(stats); // [0] kicks relayed, [1] bad fds dropped
let entries: Entry[] = [];
let fds = new Int32Array(1);
let events = new Int16Array(1);
let revents = new Int16Array(1);
let stopped = false;

function rebuild(): void {
  fds = new Int32Array(1 + entries.length);
  events = new Int16Array(fds.length).fill(n.POLLIN);
  revents = new Int16Array(fds.length);
  fds[0] = ctlFd;
  entries.forEach((e, i) => (fds[i + 1] = e.fd));
}

function control(): void {
  n.eventfdRead(ctlFd);
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    const c = m.message as Cmd;
    if (c.op === 'stop') stopped = true;
    else {
      entries = entries.filter((e) => e.key !== c.key);
      if (c.op === 'set') {
        const page = new Int32Array(c.doorbell);
        for (const fd of c.fds) if (fd >= 0) entries.push({ fd, page, slot: c.slot, key: c.key });
        // A kick may have arrived before we watched the fd: ring once so the engine looks.
        ring(page, c.slot);
      }
    }
    rebuild();
    port.postMessage({ id: c.id });
  }
}

rebuild();
while (!stopped) {
  const r = n.poll(fds, events, revents, fds.length, 500); // bounded, so terminate() is never stuck in poll
  if (r < 0) continue; // EINTR
  if (revents[0] !== 0) {
    control();
    continue; // entries changed: the revents below belong to the old list
  }
  for (let i = 1; i < fds.length; i++) {
    const ev = revents[i]!;
    if (ev === 0) continue;
    const e = entries[i - 1]!;
    if ((ev & n.POLLIN) !== 0 && n.eventfdRead(e.fd) >= 0) {
      counts[0]! += 1;
      ring(e.page, e.slot);
    } else if ((ev & (n.POLLNVAL | n.POLLERR | n.POLLHUP)) !== 0) {
      counts[1]! += 1; // not an eventfd we can read: stop watching it; the engine's sweep still runs
      entries.splice(i - 1, 1);
      rebuild();
      break;
    }
  }
}
port.close();
