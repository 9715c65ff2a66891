// The native addon's syscall wrappers: fd passing, mmap as a SharedArrayBuffer shared with a worker,
// eventfd, poll, unix sockets, and the -errno convention of the data-path calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../../src/native/index.js';

const n = native();

test('SCM_RIGHTS: a memfd sent over a socketpair maps to the same memory', () => {
  const [a, b] = n.socketpair();
  const mfd = n.memfdCreate('t', 65536);
  const msg = new Uint8Array([1, 2, 3, 4]);
  assert.equal(n.sendMsg(a, msg, 4, [mfd]), 4);
  const buf = new Uint8Array(16);
  const fds = new Int32Array(8);
  const r = n.recvMsg(b, buf, fds);
  assert.ok(typeof r === 'object');
  assert.equal(r.bytes, 4);
  assert.equal(r.nfds, 1);
  assert.deepEqual([...buf.subarray(0, 4)], [1, 2, 3, 4]);
  const mine = new Uint8Array(n.mmapShared(mfd, 65536, 0));
  const theirs = new Uint8Array(n.mmapShared(fds[0]!, 65536 - 4096, 4096));
  mine[4096 + 7] = 0xab;
  assert.equal(theirs[7], 0xab);
  for (const fd of [a, b, mfd, fds[0]!]) n.close(fd);
});

test('recvMsg: more fds than fdsOut holds are all closed and reported as nfds = -1', () => {
  const [a, b] = n.socketpair();
  const e1 = n.eventfd(0, true);
  const e2 = n.eventfd(0, true);
  n.sendMsg(a, new Uint8Array(1), 1, [e1, e2]);
  const r = n.recvMsg(b, new Uint8Array(4), new Int32Array(1));
  assert.ok(typeof r === 'object');
  assert.equal(r.nfds, -1);
  for (const fd of [a, b, e1, e2]) n.close(fd);
});

test('data-path calls return -errno instead of throwing', () => {
  const [a, b] = n.socketpair();
  assert.equal(n.recvMsg(b, new Uint8Array(4), new Int32Array(1)), -n.EAGAIN);
  assert.equal(n.accept(b) < 0, true);
  const e = n.eventfd(0, true);
  assert.equal(n.eventfdRead(e), -n.EAGAIN);
  assert.equal(n.read(a, new Uint8Array(4), 2, 4), -n.EFAULT); // outside the buffer
  n.close(a);
  const r = n.recvMsg(b, new Uint8Array(4), new Int32Array(1));
  assert.ok(typeof r === 'object');
  assert.equal(r.bytes, 0); // peer closed
  n.close(b);
  n.close(e);
  assert.equal(n.eventfdWrite(e, 1), -n.EBADF);
});

test('control-plane calls throw with the errno name as code', () => {
  assert.throws(() => n.unixConnect('/nonexistent/svnic.sock'), { code: 'ENOENT' });
  assert.throws(() => n.mmapShared(-1, 4096, 0), { code: 'EBADF' });
  assert.throws(() => n.mmapShared(0, 4096, 3), TypeError);
  // Past the end of the file: would map, then SIGBUS on first touch; refused instead.
  const small = n.memfdCreate('small', 4096);
  assert.throws(() => n.mmapShared(small, 8192, 0), { code: 'EOVERFLOW' });
  assert.throws(() => n.mmapShared(small, 4096, 4096), { code: 'EOVERFLOW' });
  n.close(small);
});

test('eventfd counts, poll reports readiness', () => {
  const e = n.eventfd(0, true);
  const fds = Int32Array.of(e);
  const ev = Int16Array.of(n.POLLIN);
  const rev = new Int16Array(1);
  assert.equal(n.poll(fds, ev, rev, 1, 0), 0);
  assert.equal(n.eventfdWrite(e, 2), 0);
  assert.equal(n.eventfdWrite(e, 3), 0);
  assert.equal(n.poll(fds, ev, rev, 1, 0), 1);
  assert.equal(rev[0]! & n.POLLIN, n.POLLIN);
  assert.equal(n.eventfdRead(e), 5);
  n.close(e);
});

test('unix listen, connect, accept; bytes flow both ways', () => {
  const dir = mkdtempSync(join(tmpdir(), 'svnic-native-'));
  try {
    const path = join(dir, 's.sock');
    const l = n.unixListen(path, 4);
    assert.equal(n.accept(l), -n.EAGAIN);
    const c = n.unixConnect(path);
    const s = n.accept(l);
    assert.ok(s >= 0);
    assert.equal(n.write(c, new Uint8Array([9, 8, 7]), 0, 3), 3);
    const got = new Uint8Array(8);
    assert.equal(n.read(s, got, 1, 7), 3);
    assert.deepEqual([...got.subarray(1, 4)], [9, 8, 7]);
    for (const fd of [l, c, s]) n.close(fd);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a mapped SharedArrayBuffer is shared with a worker (Atomics across threads)', async () => {
  const mfd = n.memfdCreate('w', 4096);
  const sab = n.mmapShared(mfd, 4096, 0);
  const w = new Worker(
    `const { workerData } = require('node:worker_threads');
     const i = new Int32Array(workerData);
     Atomics.store(i, 1, 42);
     Atomics.notify(i, 1);`,
    { eval: true, workerData: sab },
  );
  await new Promise((resolve, reject) => {
    w.once('exit', resolve);
    w.once('error', reject);
  });
  assert.equal(Atomics.load(new Int32Array(sab), 1), 42);
  n.close(mfd);
});

test('threadCpuNs grows with work on this thread', () => {
  const t0 = n.threadCpuNs();
  let x = 0;
  for (let i = 0; i < 5_000_000; i++) x += i & 3;
  assert.ok(x > 0);
  assert.ok(n.threadCpuNs() > t0);
});
