/**
 * A svnic instance as a child process, so a system test can run it inside a network namespace
 * (`ip netns exec NS node dist/test/system/helpers/svnic-node.js CONFIG.json`). It applies the run
 * config and speaks JSON lines: guest reports and replies on stdout, commands on stdin.
 *   {"id":1,"cmd":"send","guest":"g","msg":...}         -> {"type":"reply","id":1}
 *   {"id":2,"cmd":"counters"}                            -> {"type":"reply","id":2,"counters":RunSnapshot}
 *   {"id":3,"cmd":"fdb","device":"d"}                    -> {"type":"reply","id":3,"fdb":[...]}
 *   {"id":4,"cmd":"capture","device":"d","path":..,"mode":..} (path null stops)
 *   {"id":5,"cmd":"stop"}                                -> final counters, then exit
 * Guest reports: {"type":"report","guest":"g","data":...}. Errors: {"type":"error","message":...}.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { validateConfig } from '../../../src/config/schema.js';
import { resolveModule } from '../../../src/config/load.js';
import { applyConfig } from '../../../src/config/apply.js';

const out = (m: unknown): void => void process.stdout.write(JSON.stringify(m) + '\n');
// `node --test dist/test/` also loads this file as if it were a test: without a config it does nothing.
if (process.argv[2] === undefined) process.exit(0);

const cfg = validateConfig(JSON.parse(readFileSync(process.argv[2]!, 'utf8')), { resolveModule: (m) => resolveModule(m, process.cwd()) });
let run: Awaited<ReturnType<typeof applyConfig>>;
try {
  run = await applyConfig(cfg, { startMessage: undefined });
} catch (e) {
  out({ type: 'error', message: (e as Error).message });
  process.exit(1);
}
for (const [name, g] of run.guests) {
  for (const data of g.reports) out({ type: 'report', guest: name, data }); // sent while the config was applied
  g.on('report', (data: unknown) => out({ type: 'report', guest: name, data }));
  g.on('failed', (error: unknown) => out({ type: 'guest-failed', guest: name, error }));
}
out({ type: 'started' });

const rl = createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  let m: { id: number; cmd: string; guest?: string; msg?: unknown; device?: string; path?: string | null; mode?: 'inner' | 'outer' };
  try {
    m = JSON.parse(line);
  } catch {
    return;
  }
  try {
    if (m.cmd === 'send') {
      run.guests.get(m.guest!)!.send(m.msg);
      out({ type: 'reply', id: m.id });
    } else if (m.cmd === 'counters') {
      out({ type: 'reply', id: m.id, counters: run.counters() });
    } else if (m.cmd === 'fdb') {
      const u = run.uplinks.get(m.device!) as unknown as { fdb(): Promise<unknown> };
      out({ type: 'reply', id: m.id, fdb: await u.fdb() });
    } else if (m.cmd === 'capture') {
      const u = run.uplinks.get(m.device!) as unknown as { capture(p: string | null, mode?: string): Promise<void> };
      await u.capture(m.path ?? null, m.mode);
      out({ type: 'reply', id: m.id });
    } else if (m.cmd === 'stop') {
      const counters = await run.stop();
      out({ type: 'reply', id: m.id, counters });
      process.exit(0);
    }
  } catch (e) {
    out({ type: 'reply', id: m.id, error: (e as Error).message });
  }
});
rl.on('close', () => void run.stop().then(() => process.exit(0)));
