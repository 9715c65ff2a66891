/**
 * The daemon's control loop: one desired state (a config document), one running state (Runtime),
 * and every change (file reload, PUT /v1/config, VIF calls) as: build the new desired document,
 * validate it (an invalid one changes nothing), plan the difference, apply it step by step.
 *
 * Serialisation: changes run one at a time through a queue, each against the state left by the
 * previous one (so two conflicting requests cannot interleave: the second one sees the first one's
 * result and fails with a 4xx if it no longer makes sense, e.g. VIF_EXISTS, DUPLICATE_MAC,
 * NO_SUCH_VIF). A client that wants to be sure nobody changed the state since it read it sends the
 * generation it read (If-Match); a mismatch is GENERATION_MISMATCH (409). At most MAX_QUEUED
 * changes wait; beyond that, BUSY (503).
 *
 * A step that fails half-way (a guest module throws at start, a guest exits while being plugged)
 * triggers a rollback to the previous desired state, and APPLY_FAILED (422) names the step.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { validateConfig, type Config, type VifConfig } from '../config/schema.js';
import { ConfigError, type ConfigIssue } from '../config/issues.js';
import { parseConfigText, resolveModule } from '../config/load.js';
import { progress, type ProgressOptions } from '../cli/progress.js';
import { ApiError } from './errors.js';
import { describeChange, describeStep, planChanges, type Change } from './plan.js';
import { Runtime } from './runtime.js';
import { clone, pinDocument, readState, sha256, withResolvedMacs, writeState } from './state.js';

export const MAX_QUEUED = 32;

export interface ControllerOptions {
  /** The config file: reloaded on SIGHUP / POST /v1/reload; guest module paths are relative to it. */
  configFile?: string;
  /** The state file (state.ts); none: no persistence. */
  stateFile?: string;
  log?: (msg: string) => void;
  progress?: ProgressOptions;
  /** Called after every applied change (the daemon takes a fresh counter sample). */
  onApplied?: () => void;
}

export type ApplySource = 'startup' | 'restore' | 'reload' | 'api-config' | 'api-vif';

export interface ApplyResult {
  generation: number;
  source: ApplySource;
  dryRun: boolean;
  changes: Change[];
  /** The changes as lines (`vif a-eth0 changed (mtu 1500 -> 9000)`). */
  summary: string[];
}

export interface ApplyRecord {
  at: string;
  source: ApplySource;
  ok: boolean;
  generation: number;
  summary: string[];
  error?: { code: string; message: string };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export class Controller {
  readonly runtime = new Runtime();
  generation = 0;
  /** The desired document (VIF names and MACs pinned) and its validated form. */
  doc: unknown = { guests: [] };
  desired: Config = { devices: [], guests: [] };
  readonly macs = new Map<string, string>();
  readonly history: ApplyRecord[] = [];
  readonly stats = { applied: 0, failed: 0, rejected: 0, persistFailures: 0 };
  private configHash = '';
  private queue: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private readonly log: (msg: string) => void;
  readonly baseDir: string;

  constructor(readonly opts: ControllerOptions = {}) {
    this.log = opts.log ?? (() => {});
    this.baseDir = opts.configFile ? dirname(resolve(opts.configFile)) : process.cwd();
    this.runtime.baseDir = this.baseDir;
  }

  /** Run `fn` after every change queued before it. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.queued >= MAX_QUEUED) {
      return Promise.reject(new ApiError('BUSY', 503, `${this.queued} changes are already waiting; retry when they are done`));
    }
    this.queued++;
    const run = async () => {
      try {
        return await fn();
      } finally {
        this.queued--;
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  /** Validate a document: pin names and MACs, check it, resolve guest modules relative to the config file. */
  validate(doc: unknown, lineOf?: (path: string) => number | undefined, file?: string): { pinned: unknown; config: Config } {
    const pinned = pinDocument(doc, this.macs);
    if (!isObj(pinned)) throw new ConfigError([{ path: '', message: 'the config must be a mapping with `device` or `devices` and `guests`; see docs/config.md' }]);
    try {
      // VM guests (vms:, issue 5) are the guest kind `vm` (registry.ts, vm-guest.ts).
      return { pinned, config: validateConfig(pinned, { resolveModule: (m) => resolveModule(m, this.baseDir) }) };
    } catch (e) {
      if (!(e instanceof ConfigError) || !lineOf) throw e;
      throw new ConfigError(e.issues.map((i): ConfigIssue => {
        const line = lineOf(i.path);
        return line ? { ...i, message: `${i.message} (${file}:${line})` } : i;
      }));
    }
  }

  /**
   * For VIF calls, a document whose only problems are duplicate MACs is a conflict with another VIF
   * (409 DUPLICATE_MAC, with the issues), not a malformed request.
   */
  private validateForSource(doc: unknown, source: ApplySource, lineOf?: (p: string) => number | undefined, file?: string): { pinned: unknown; config: Config } {
    try {
      return this.validate(doc, lineOf, file);
    } catch (e) {
      if (source === 'api-vif' && e instanceof ConfigError && e.issues.every((i) => i.message.startsWith('duplicate MAC'))) {
        throw new ApiError('DUPLICATE_MAC', 409, `${e.message}\nchoose a MAC no other VIF of the segment uses`, { issues: e.issues });
      }
      // QoS admission (issue 6; config/schema.ts checkQosAdmission): guarantees that do not fit the
      // device's capacity are a conflict with the running state, with the core's stable codes.
      const admission = e instanceof ConfigError && e.issues.length > 0 && e.issues.every((i) => i.path.endsWith('.qos.capacityBitsPerSec'));
      if (admission) {
        const code = e.issues.some((i) => i.message.startsWith('required')) ? 'QOS_NO_CAPACITY' : 'QOS_OVERCOMMIT';
        throw new ApiError(code, 409, `${e.message}\nlower a guaranteedBitsPerSec or raise the device's qos.capacityBitsPerSec (docs/qos.md)`, { issues: e.issues });
      }
      throw e;
    }
  }

  /**
   * Make `doc` the desired state (call inside serial()). Throws ConfigError (CONFIG_INVALID),
   * ApiError (NEEDS_RESTART, GENERATION_MISMATCH, APPLY_FAILED) or an SvnicError; in every case
   * but APPLY_FAILED nothing was changed.
   */
  async apply(doc: unknown, source: ApplySource, o: { dryRun?: boolean; ifGeneration?: number; lineOf?: (p: string) => number | undefined; file?: string } = {}): Promise<ApplyResult> {
    const record = (r: Omit<ApplyRecord, 'at'>) => {
      this.history.push({ at: new Date().toISOString(), ...r });
      if (this.history.length > 50) this.history.shift();
    };
    try {
      if (o.ifGeneration !== undefined && o.ifGeneration !== this.generation) {
        throw new ApiError('GENERATION_MISMATCH', 409, `the state changed since generation ${o.ifGeneration} (it is now ${this.generation}); read it again and retry`, { generation: this.generation });
      }
      const { pinned, config } = this.validateForSource(doc, source, o.lineOf, o.file);
      const plan = planChanges(this.runtime.view(), config);
      const summary = plan.changes.map(describeChange);
      if (o.dryRun) return { generation: this.generation, source, dryRun: true, changes: plan.changes, summary };
      await this.execute(plan.steps, source);
      this.doc = withResolvedMacs(pinned, config);
      this.desired = config;
      for (const g of config.guests) for (const v of g.vifs) this.macs.set(v.name, v.mac);
      this.generation++;
      this.stats.applied++;
      this.persist();
      for (const l of summary) this.log(`  ${l}`);
      this.log(`generation ${this.generation} (${source}): ${summary.length ? `${summary.length} change${summary.length === 1 ? '' : 's'}` : 'no changes'}`);
      record({ source, ok: true, generation: this.generation, summary });
      this.opts.onApplied?.();
      return { generation: this.generation, source, dryRun: false, changes: plan.changes, summary };
    } catch (e) {
      if (e instanceof ApiError && e.code === 'APPLY_FAILED') this.stats.failed++;
      else this.stats.rejected++;
      const err = e as Error & { code?: string };
      record({ source, ok: false, generation: this.generation, summary: [], error: { code: err.code ?? 'INTERNAL', message: err.message } });
      throw e;
    }
  }

  private async execute(steps: ReturnType<typeof planChanges>['steps'], source: ApplySource): Promise<void> {
    const p = progress(`apply (${source})`, steps.length, { ...this.opts.progress, enabled: (this.opts.progress?.enabled ?? true) && steps.length > 0 });
    const done: string[] = [];
    for (const s of steps) {
      p.step(describeStep(s));
      try {
        await this.runtime.run(s);
        done.push(describeStep(s));
      } catch (e) {
        const msg = (e as Error).message;
        p.fail(msg);
        let rolledBack = true;
        try {
          const back = planChanges(this.runtime.view(), this.desired);
          for (const b of back.steps) await this.runtime.run(b);
        } catch (re) {
          rolledBack = false;
          this.log(`rollback failed: ${(re as Error).message}; the running state differs from generation ${this.generation} (GET /v1/config shows the desired state; reload to retry)`);
        }
        const cause = (e as { code?: string }).code;
        if (rolledBack && (cause === 'QOS_OVERCOMMIT' || cause === 'QOS_NO_CAPACITY')) {
          // admission control of the device refused it (e.g. per engine): a conflict, rolled back
          throw new ApiError(cause, 409, `${describeStep(s)}: ${msg}; the changes before it were rolled back`, { failedStep: describeStep(s), applied: done, rolledBack });
        }
        throw new ApiError('APPLY_FAILED', 422, `${describeStep(s)} failed: ${msg}${rolledBack ? '; the changes before it were rolled back' : '; the rollback failed too, see the daemon log'}`, {
          failedStep: describeStep(s), cause: (e as { code?: string }).code ?? 'ERROR', applied: done, rolledBack,
        });
      }
    }
    p.done(`${steps.length} step${steps.length === 1 ? '' : 's'}`);
  }

  /** Save the desired state. A failure (disk full) is logged, not thrown: the change is applied. */
  private persist(): void {
    if (!this.opts.stateFile) return;
    try {
      writeState(this.opts.stateFile, {
        version: 1, configFile: this.opts.configFile ? resolve(this.opts.configFile) : '', configHash: this.configHash,
        generation: this.generation, doc: this.doc, macs: Object.fromEntries(this.macs), savedAt: new Date().toISOString(),
      });
      this.stats.persistFailures = 0;
    } catch (e) {
      this.stats.persistFailures++;
      this.log(`could not save the state to ${this.opts.stateFile}: ${(e as Error).message}; a restart would come back to an older state`);
    }
  }

  /** Read the config file; its parsed document, line finder and hash. */
  private readConfigFile(): { data: unknown; lineOf: (p: string) => number | undefined; hash: string; file: string } {
    const file = this.opts.configFile;
    if (!file) throw new ApiError('NO_CONFIG_FILE', 409, 'the daemon was started without --config; use PUT /v1/config');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError([{ path: '', message: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }]);
    }
    const { data, lineOf } = parseConfigText(text, file);
    if (data === null || data === undefined) throw new ConfigError([{ path: '', message: `${file} is empty; see docs/config.md for the format` }]);
    return { data, lineOf, hash: sha256(text), file };
  }

  /**
   * Start: the state file's document if the config file has not changed since it was written,
   * else the config file (keeping remembered MACs by VIF name). Without a config file: the state
   * file's document, or nothing.
   */
  async start(): Promise<ApplyResult> {
    return this.serial(async () => {
      const saved = this.opts.stateFile ? readState(this.opts.stateFile) : { state: null };
      if (saved.problem) this.log(saved.problem);
      const st = saved.state;
      if (st) {
        for (const [k, v] of Object.entries(st.macs)) if (typeof v === 'string') this.macs.set(k, v);
        this.generation = st.generation;
      }
      const f = this.opts.configFile ? this.readConfigFile() : null;
      if (st && (!f || st.configHash === f.hash)) {
        this.configHash = st.configHash;
        try {
          this.log(`restoring the state saved at ${st.savedAt} (generation ${st.generation})`);
          return await this.apply(st.doc, 'restore');
        } catch (e) {
          if (!f) throw e;
          this.log(`the saved state does not apply (${(e as Error).message.split('\n')[0]}); starting from ${f.file}`);
        }
      } else if (st && f) {
        this.log(`${f.file} changed since the state was saved; it is the desired state now (VIFs without a MAC keep theirs)`);
      }
      if (!f) return { generation: this.generation, source: 'startup', dryRun: false, changes: [], summary: [] };
      this.configHash = f.hash;
      return this.apply(f.data, 'startup', { lineOf: f.lineOf, file: f.file });
    });
  }

  /** SIGHUP / POST /v1/reload: the config file is the desired state again. */
  reload(o: { dryRun?: boolean; ifGeneration?: number } = {}): Promise<ApplyResult> {
    return this.serial(async () => {
      const f = this.readConfigFile();
      const prev = this.configHash;
      this.configHash = f.hash;
      try {
        return await this.apply(f.data, 'reload', { ...o, lineOf: f.lineOf, file: f.file });
      } catch (e) {
        this.configHash = prev;
        throw e;
      } finally {
        if (o.dryRun) this.configHash = prev;
      }
    });
  }

  /** PUT /v1/config. */
  putConfig(doc: unknown, o: { dryRun?: boolean; ifGeneration?: number } = {}): Promise<ApplyResult> {
    return this.serial(() => this.apply(doc, 'api-config', o));
  }

  // ---- VIF calls: edit the desired document, then apply it ------------------------------------

  private findVif(doc: Obj, name: string): { list: unknown[] | null; index: number; vif: Obj; guest: string } | null {
    for (const g of (doc.guests as unknown[]) ?? []) {
      if (!isObj(g) || !Array.isArray(g.vifs)) continue;
      const index = g.vifs.findIndex((v) => isObj(v) && v.name === name);
      if (index >= 0) return { list: g.vifs, index, vif: g.vifs[index] as Obj, guest: String(g.name) };
    }
    // a VM guest's one VIF (vms[].vif, issue 5): it can be changed, not removed on its own (list null)
    for (const m of Array.isArray(doc.vms) ? doc.vms : []) {
      if (isObj(m) && isObj(m.vif) && m.vif.name === name) return { list: null, index: 0, vif: m.vif, guest: String(m.name) };
    }
    return null;
  }

  addVif(body: Obj & { guest: string }, o: { ifGeneration?: number; dryRun?: boolean } = {}): Promise<ApplyResult & { vif: string }> {
    return this.serial(async () => {
      const doc = clone(this.doc) as Obj;
      const { guest, ...vif } = body;
      const g = ((doc.guests as unknown[]) ?? []).find((x): x is Obj => isObj(x) && x.name === guest);
      if (!g && Array.isArray(doc.vms) && doc.vms.some((m) => isObj(m) && m.name === guest)) {
        throw new ApiError('VM_HAS_ONE_VIF', 409, `guest "${guest}" is a VM, which has exactly one VIF (vms[].vif); change that one with PATCH`);
      }
      if (!g) throw new ApiError('NO_SUCH_GUEST', 404, `no guest "${guest}"; guests: ${this.desired.guests.map((x) => x.name).join(', ') || '(none)'}`);
      const names = new Set(this.desired.guests.flatMap((x) => x.vifs.map((v) => v.name)));
      if (typeof vif.name === 'string' && names.has(vif.name)) throw new ApiError('VIF_EXISTS', 409, `a VIF named "${vif.name}" already exists; choose another name or change it with PATCH`);
      if (vif.name === undefined) {
        let i = 0;
        while (names.has(`${guest}-eth${i}`)) i++;
        vif.name = `${guest}-eth${i}`;
      }
      if (!Array.isArray(g.vifs)) g.vifs = [];
      (g.vifs as unknown[]).push(vif);
      const r = await this.apply(doc, 'api-vif', o);
      return { ...r, vif: vif.name as string };
    });
  }

  setVif(name: string, patch: Obj, o: { ifGeneration?: number; dryRun?: boolean } = {}): Promise<ApplyResult> {
    return this.serial(async () => {
      const doc = clone(this.doc) as Obj;
      const f = this.findVif(doc, name);
      if (!f) throw new ApiError('NO_SUCH_VIF', 404, `no VIF "${name}"; list VIFs with GET /v1/vifs`);
      for (const [k, v] of Object.entries(patch)) {
        if (v === null) delete f.vif[k]; // (api-schemas.ts NULLABLE_VIF_FIELDS: capture off, engine unpinned, QoS off)
        else f.vif[k] = k === 'coalesce' && isObj(v) && isObj(f.vif.coalesce) ? { ...f.vif.coalesce, ...v } : v;
      }
      return this.apply(doc, 'api-vif', o);
    });
  }

  removeVif(name: string, o: { ifGeneration?: number; dryRun?: boolean } = {}): Promise<ApplyResult> {
    return this.serial(async () => {
      const doc = clone(this.doc) as Obj;
      const f = this.findVif(doc, name);
      if (!f) throw new ApiError('NO_SUCH_VIF', 404, `no VIF "${name}"; list VIFs with GET /v1/vifs`);
      if (!f.list) throw new ApiError('VM_HAS_ONE_VIF', 409, `VIF "${name}" is VM guest ${f.guest}'s only VIF; remove the VM (its vms: entry, PUT /v1/config) instead`);
      f.list.splice(f.index, 1);
      return this.apply(doc, 'api-vif', o);
    });
  }

  /** The desired config of a VIF, by name. */
  vifConfig(name: string): { cfg: VifConfig; guest: string } | null {
    for (const g of this.desired.guests) for (const v of g.vifs) if (v.name === name) return { cfg: v, guest: g.name };
    return null;
  }

  stop(): Promise<void> {
    return this.serial(() => this.runtime.stop());
  }
}
