/**
 * UDP sender for the kernel anchor of `svnic bench uplink`: `node uplink-blast.js DST PORT SIZE MS`.
 * Sends datagrams of SIZE bytes to DST:PORT for MS milliseconds with Node's dgram (at most 64 in
 * flight), prints { sent }. The same sink receives it as receives svnic's guests.
 */
import { createSocket } from 'node:dgram';

const [dst, port, size, ms] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
const s = createSocket('udp4');
const buf = Buffer.alloc(size);
let sent = 0;
let inflight = 0;
const end = performance.now() + ms;
function pump(): void {
  while (inflight < 64 && performance.now() < end) {
    inflight++;
    s.send(buf, port, dst, () => {
      inflight--;
      sent++;
      pump();
    });
  }
  if (inflight === 0 && performance.now() >= end) {
    process.stdout.write(JSON.stringify({ sent }) + '\n');
    s.close();
  }
}
pump();
