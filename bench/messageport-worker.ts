/**
 * Baseline 2: the same frames posted between two workers with MessagePort, what a Node user would
 * write without svnic. Each frame is its own postMessage of a Uint8Array (structured clone: one
 * copy). The consumer counts frames in its 'message' handler and acknowledges every ACK_EVERY
 * frames; the producer keeps at most WINDOW frames unacknowledged (without a window it would
 * queue without bound and measure the allocator, not the channel). The producer reads its acks
 * synchronously with receiveMessageOnPort, so it never yields: the best case for MessagePort.
 *
 * Roles: producer / consumer (throughput), ping / pong (round-trip latency, event driven: each
 * side answers from its 'message' handler, as an ordinary Node program would).
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { RttRecorder, STAT_BYTES, STAT_FRAMES, stopRequested } from './common.js';

const WINDOW = 4096;
const ACK_EVERY = 256;

export interface MessagePortWorkerData {
  kind: 'messageport';
  role: 'producer' | 'consumer' | 'ping' | 'pong';
  port: MessagePort;
  ctl: SharedArrayBuffer;
  stats?: SharedArrayBuffer;
  frameBytes: number;
  warmupMs?: number;
  durationMs?: number;
}

function producer(d: MessagePortWorkerData): void {
  const ctl = new Int32Array(d.ctl);
  const frame = new Uint8Array(d.frameBytes);
  for (let i = 0; i < frame.length; i++) frame[i] = i & 0xff;
  let sent = 0;
  let acked = 0;
  while (!stopRequested(ctl)) {
    let n = 0;
    while (sent - acked < WINDOW && n < 64) {
      frame[14] = sent & 0xff;
      d.port.postMessage(frame);
      sent++;
      n++;
    }
    for (let m = receiveMessageOnPort(d.port); m !== undefined; m = receiveMessageOnPort(d.port)) acked = m.message as number;
  }
  d.port.close();
}

function consumer(d: MessagePortWorkerData): void {
  const st = new Float64Array(d.stats!);
  let frames = 0;
  let bytes = 0;
  d.port.on('message', (f: Uint8Array) => {
    frames++;
    bytes += f.length;
    if (frames % ACK_EVERY === 0) {
      st[STAT_FRAMES] = frames;
      st[STAT_BYTES] = bytes;
      d.port.postMessage(frames);
    }
  });
}

function ping(d: MessagePortWorkerData): void {
  const frame = new Uint8Array(d.frameBytes);
  const rec = new RttRecorder(1_000_000);
  const start = performance.now();
  const measureFrom = start + (d.warmupMs ?? 200);
  const end = measureFrom + (d.durationMs ?? 1000);
  let t0 = 0;
  const send = (): void => {
    t0 = performance.now();
    d.port.postMessage(frame);
  };
  d.port.on('message', () => {
    const t1 = performance.now();
    if (t0 >= measureFrom) rec.add((t1 - t0) * 1000);
    if (t1 < end) send();
    else {
      d.port.close();
      parentPort!.postMessage(rec.summary(end - measureFrom));
    }
  });
  send();
}

function pong(d: MessagePortWorkerData): void {
  d.port.on('message', (f: Uint8Array) => d.port.postMessage(f));
}

if (parentPort && workerData && (workerData as { kind?: string }).kind === 'messageport') {
  const d = workerData as MessagePortWorkerData;
  if (d.role === 'producer') producer(d);
  else if (d.role === 'consumer') consumer(d);
  else if (d.role === 'ping') ping(d);
  else pong(d);
}
