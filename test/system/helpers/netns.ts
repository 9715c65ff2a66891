/**
 * Network namespaces for system tests: names carry the issue prefix and the pid (`sv4-<pid>-...`)
 * so concurrent runs never collide; every namespace made here is deleted by cleanup(), which the
 * tests call in `after` hooks whether they passed or not. Also the loud skip rule: without root a
 * system test skips with the reason, but under CI=true a skip is a failure.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const PREFIX = `sv4-${process.pid}`;
const made = new Set<string>();

export function sh(cmd: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000 });
  } catch (e) {
    if (opts.allowFail) return '';
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr || err.stdout || err.message}`);
  }
}

export const ip = (...args: string[]): string => sh('ip', args);
export const nsExec = (ns: string, ...args: string[]): string => sh('ip', ['netns', 'exec', ns, ...args]);

/** Why system tests cannot run here, or null. */
export function systemTestBlocker(tools: string[] = []): string | null {
  if (process.getuid?.() !== 0) return 'system tests need root (network namespaces)';
  if (!sh('sh', ['-c', 'test -e /dev/net/tun && echo ok'], { allowFail: true }).includes('ok')) return '/dev/net/tun is missing';
  for (const t of ['ip', ...tools]) {
    if (!sh('sh', ['-c', `command -v ${t} || true`]).trim()) return `${t} is not installed (apt-get install the packages in .ci/packages/net.txt)`;
  }
  return null;
}

/**
 * Options for a system test suite's describe(): skipped (with a loud message) when the machine
 * cannot run it, except under CI=true, where the suite runs and its setup fails on requireAble().
 */
export function suiteOptions(tools: string[] = []): { skip?: string } {
  const why = systemTestBlocker(tools);
  if (why === null || process.env.CI === 'true') return {};
  process.stderr.write(`\n*** SKIPPED system test suite: ${why} ***\n`);
  return { skip: why };
}

/** Throws when the machine cannot run system tests (the CI=true case of suiteOptions). */
export function requireAble(tools: string[] = []): void {
  const why = systemTestBlocker(tools);
  if (why !== null) throw new Error(`system test cannot run${process.env.CI === 'true' ? ' under CI=true' : ''}: ${why}`);
}

export function makeNs(suffix: string): string {
  const name = `${PREFIX}-${suffix}`;
  ip('netns', 'add', name);
  made.add(name);
  nsExec(name, 'ip', 'link', 'set', 'lo', 'up');
  return name;
}

/** A veth pair with one end in each namespace, addressed and up. */
export function veth(nsA: string, addrA: string, nsB: string, addrB: string, tag: string): void {
  const a = `sv4${tag}a`;
  const b = `sv4${tag}b`;
  ip('link', 'add', a, 'netns', nsA, 'type', 'veth', 'peer', 'name', b, 'netns', nsB);
  nsExec(nsA, 'ip', 'addr', 'add', addrA, 'dev', a);
  nsExec(nsB, 'ip', 'addr', 'add', addrB, 'dev', b);
  nsExec(nsA, 'ip', 'link', 'set', a, 'up');
  nsExec(nsB, 'ip', 'link', 'set', b, 'up');
}

/** Delete every namespace this process made (their interfaces go with them). */
export function cleanup(): void {
  for (const ns of made) {
    sh('ip', ['netns', 'del', ns], { allowFail: true });
    made.delete(ns);
  }
}

export interface SvnicChild {
  proc: ChildProcess;
  reports: { guest: string; data: unknown }[];
  call(cmd: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** The next report from `guest` that satisfies `pred`. */
  report(guest: string, pred: (d: any) => boolean, limitMs?: number): Promise<any>;
  stop(): Promise<void>;
}

/** Run svnic (svnic-node.js) with `configFile`, inside `ns` if given. */
export function startSvnic(configFile: string, ns: string | null): Promise<SvnicChild> {
  const script = fileURLToPath(new URL('./svnic-node.js', import.meta.url));
  const argv = ns ? ['netns', 'exec', ns, process.execPath, script, configFile] : [script, configFile];
  const proc = spawn(ns ? 'ip' : process.execPath, argv, { stdio: ['pipe', 'pipe', 'inherit'] });
  const reports: { guest: string; data: unknown }[] = [];
  const waiters = new Map<number, (m: Record<string, unknown>) => void>();
  const reportWaiters: (() => void)[] = [];
  let seq = 0;
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! });
    let started = false;
    proc.on('exit', (code) => {
      if (!started) reject(new Error(`svnic child exited with ${code} before starting`));
      for (const w of waiters.values()) w({ error: `svnic child exited (${code})` });
    });
    rl.on('line', (line) => {
      let m: Record<string, any>;
      try {
        m = JSON.parse(line);
      } catch {
        return;
      }
      if (m.type === 'started') {
        started = true;
        resolve(child);
      } else if (m.type === 'error') reject(new Error(`svnic child: ${m.message}`));
      else if (m.type === 'report') {
        reports.push({ guest: m.guest, data: m.data });
        for (const w of reportWaiters.splice(0)) w();
      } else if (m.type === 'reply') {
        waiters.get(m.id)?.(m);
        waiters.delete(m.id);
      }
    });
    const child: SvnicChild = {
      proc,
      reports,
      call(cmd) {
        const id = ++seq;
        return new Promise((res) => {
          waiters.set(id, res);
          proc.stdin!.write(JSON.stringify({ ...cmd, id }) + '\n');
        });
      },
      async report(guest, pred, limitMs = 30_000) {
        const end = Date.now() + limitMs;
        let from = 0;
        for (;;) {
          for (; from < reports.length; from++) {
            const r = reports[from]!;
            if (r.guest === guest && pred(r.data)) {
              reports.splice(from, 1);
              return r.data;
            }
          }
          if (Date.now() > end) throw new Error(`no report from ${guest} matching ${pred}`);
          await new Promise<void>((r) => {
            const t = setTimeout(r, 200);
            reportWaiters.push(() => {
              clearTimeout(t);
              r();
            });
          });
        }
      },
      async stop() {
        if (proc.exitCode !== null) return;
        const done = new Promise((r) => proc.once('exit', r));
        void child.call({ cmd: 'stop' });
        const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await done;
        clearTimeout(t);
      },
    };
  });
}
