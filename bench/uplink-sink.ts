/**
 * UDP sink for `svnic bench uplink`, run inside a namespace: `node uplink-sink.js PORT MS`.
 * Counts datagrams for MS milliseconds after the first one and prints one JSON line:
 * { count, bytes, spanMs } where spanMs runs from the first to the last datagram.
 */
import { createSocket } from 'node:dgram';

const port = Number(process.argv[2]);
const ms = Number(process.argv[3]);
const s = createSocket('udp4');
let count = 0;
let bytes = 0;
let first = 0;
let last = 0;
s.on('message', (m) => {
  const now = performance.now();
  if (count === 0) {
    first = now;
    setTimeout(done, ms);
  }
  count++;
  bytes += m.length;
  last = now;
});
function done(): void {
  process.stdout.write(JSON.stringify({ count, bytes, spanMs: last - first }) + '\n');
  s.close();
}
s.bind(port, () => {
  process.stdout.write('ready\n');
  setTimeout(() => {
    if (count === 0) done();
  }, ms + 10_000);
});
