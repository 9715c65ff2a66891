/** System tests need real tools (promtool, chromium). Missing: a loud skip, or a failure under CI=true. */
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export function which(cmd: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

/** The tool's path, or null after skipping `t` (throws under CI=true: a skip there is a failure). */
export function needTool(t: TestContext, cmd: string, pkg: string): string | null {
  const p = which(cmd);
  if (p) return p;
  const why = `${cmd} is not installed (Debian package "${pkg}", listed in .ci/packages/daemon.txt)`;
  if (process.env.CI === 'true') throw new Error(`${why}; under CI=true this is a failure, not a skip`);
  process.stderr.write(`\n*** SKIPPED: ${why} ***\n\n`);
  t.skip(why);
  return null;
}
