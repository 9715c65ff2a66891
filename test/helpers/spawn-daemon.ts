/** Run `bin/svnicd` as a child process and wait for its ready line (JSON on stdout). */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './daemon.js';

export interface Spawned {
  child: ChildProcess;
  ready: { pid: number; socket: string; url: string | null; tokenFile: string | null; generation: number };
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnDaemon(args: string[], limitMs = 60_000): Promise<Spawned> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/svnicd'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`svnicd did not get ready (a liveness bound, not a timing check); stderr:\n${err}`));
    }, limitMs);
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const line = out.split('\n').find((l) => l.startsWith('{"ready"'));
      if (line) {
        clearTimeout(t);
        resolve({ child, ready: JSON.parse(line), stderr: () => err, exited });
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(t);
      reject(new Error(`svnicd exited (code ${code}, signal ${signal}) before it was ready; stderr:\n${err}`));
    });
  });
}
