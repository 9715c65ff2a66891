/**
 * The desired state as a config document (the same format as a `svnic run` file, docs/config.md),
 * and its persistence across restarts.
 *
 * "The same VIFs" after a restart means: the same VIF names, on the same devices, plugged into the
 * same guests, with the same MACs and settings, including VIFs added, changed or removed through the
 * API since the config file was loaded. It does not mean the same memory: VIF memory, counters and
 * guest workers live in the daemon's process and die with it, so guests start again from their
 * modules and counters start from zero (a restart looks to a guest like a reboot).
 *
 * How: after every successful apply the daemon writes the desired document, with every VIF's name
 * and MAC written out (pinned), to a state file (atomically: temporary file, fsync, rename). The
 * state file remembers the hash of the config file it started from. On start, if the config file is
 * unchanged, the state file's document is the desired state; if the config file changed, the file
 * wins, but VIFs it leaves without a MAC keep the MAC they had (by VIF name).
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { homedir } from 'node:os';
import type { Config } from '../config/schema.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export const clone = <T>(v: T): T => structuredClone(v);

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * Write in every VIF's name (the default `<guest>-eth<index>`) and, from `macs` (by VIF name), the
 * MAC of VIFs that have none, unless another VIF of the document names that MAC explicitly. A
 * document of the wrong shape is returned as it is, for validation to report.
 */
export function pinDocument(doc: unknown, macs: ReadonlyMap<string, string>): unknown {
  const out = clone(doc);
  if (!isObj(out) || !Array.isArray(out.guests)) return out;
  const explicit = new Set<string>();
  for (const g of out.guests) {
    if (!isObj(g) || !Array.isArray(g.vifs)) continue;
    for (const v of g.vifs) if (isObj(v) && typeof v.mac === 'string') explicit.add(v.mac.toLowerCase());
  }
  for (const g of out.guests) {
    if (!isObj(g) || !Array.isArray(g.vifs) || typeof g.name !== 'string') continue;
    g.vifs.forEach((v, i) => {
      if (!isObj(v)) return;
      if (v.name === undefined) v.name = `${g.name as string}-eth${i}`;
      if (v.mac === undefined && typeof v.name === 'string') {
        const m = macs.get(v.name);
        if (m && !explicit.has(m)) {
          v.mac = m;
          explicit.add(m);
        }
      }
    });
  }
  return out;
}

/** The document with every VIF's MAC as the validated config resolved it (by path). */
export function withResolvedMacs(doc: unknown, config: Config): unknown {
  const out = clone(doc);
  if (!isObj(out) || !Array.isArray(out.guests)) return out;
  for (const g of config.guests) {
    for (const v of g.vifs) {
      const [, gi, , vi] = v.path.split('.');
      const rawG = out.guests[Number(gi)];
      const rawV = isObj(rawG) && Array.isArray(rawG.vifs) ? rawG.vifs[Number(vi)] : undefined;
      if (isObj(rawV)) {
        rawV.name = v.name;
        rawV.mac = v.mac;
      }
    }
  }
  return out;
}

export interface StateFile {
  version: 1;
  /** Absolute path of the config file, and the sha256 of its text when it was last loaded. */
  configFile: string;
  configHash: string;
  generation: number;
  /** The desired state: a config document with VIF names and MACs pinned. */
  doc: unknown;
  /** MACs by VIF name, for VIFs the config file leaves without one. */
  macs: Record<string, string>;
  savedAt: string;
}

/** Where the state of the daemon for `configFile` lives: one file per config file path. */
export function stateFilePath(stateDir: string, configFile: string): string {
  return join(stateDir, `state-${sha256(resolve(configFile)).slice(0, 12)}.json`);
}

export function defaultStateDir(): string {
  if (process.env.SVNIC_STATE_DIR) return process.env.SVNIC_STATE_DIR;
  if (process.getuid?.() === 0) return '/var/lib/svnic';
  return join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'svnic');
}

/** Read a state file; null if there is none or it is not one of ours (the caller logs why). */
export function readState(file: string): { state: StateFile | null; problem?: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { state: null, problem: code === 'ENOENT' ? undefined : `cannot read ${file}: ${code}` };
  }
  try {
    const s = JSON.parse(text) as StateFile;
    if (s.version !== 1 || typeof s.configHash !== 'string' || !isObj(s.macs)) return { state: null, problem: `${file} is not a svnic state file (version 1); ignoring it` };
    return { state: s };
  } catch {
    return { state: null, problem: `${file} is not valid JSON (a torn write cannot happen: it is renamed into place); ignoring it` };
  }
}

/** Write the state file atomically and durably: temp file, fsync, rename, fsync the directory. */
export function writeState(file: string, s: StateFile): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(s, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  try {
    const dfd = openSync(dirname(file), 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    // some file systems cannot fsync a directory; the rename is still atomic
  }
}
