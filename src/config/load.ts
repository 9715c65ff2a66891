/**
 * Reading a config file: YAML or JSON text, the line of each problem, and guest module paths.
 *
 * Module paths (the rule, also in docs/config.md):
 *  - relative paths are relative to the directory of the config file; absolute paths and file: URLs
 *    are used as they are;
 *  - a path ending in `.ts` / `.mts` names a TypeScript source: it is mapped to the compiled file by
 *    the nearest tsconfig.json above it: `<rootDir>/<rel>.ts` -> `<outDir>/<rel>.js` (`.mts` ->
 *    `.mjs`). In this repository `examples/hello-guest.ts` -> `dist/examples/hello-guest.js`.
 *    Without a tsconfig.json (or without outDir) the .js next to the .ts is used;
 *  - the file must exist (for .ts: the compiled file; build first with `npx tsc -p .`).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { ConfigError, validateConfig, type Config, type ConfigIssue } from './schema.js';

/** Parse YAML (or JSON, which is parsed as YAML 1.2 too: duplicate keys are errors in both). */
export function parseConfigText(text: string, file = '<config>'): { data: unknown; lineOf: (path: string) => number | undefined } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) {
    throw new ConfigError(doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      const where = `${file}:${pos.line}:${pos.col}`;
      return { path: '', message: `${where}: ${e.message.split('\n')[0]}` };
    }));
  }
  const data: unknown = doc.toJS();
  const lineOf = (path: string): number | undefined => {
    const keys = path === '' ? [] : path.split('.').map((k) => (/^\d+$/.test(k) ? Number(k) : k));
    // the deepest node that exists on the path: an unknown or missing key's parent still has a line
    for (let n = keys.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(keys.slice(0, n), true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  return { data, lineOf };
}

/** Where the compiled .js of a .ts source is (see the module comment). */
export function compiledPathFor(tsFile: string): string {
  const jsExt = extname(tsFile) === '.mts' ? '.mjs' : '.js';
  for (let dir = dirname(tsFile); ; dir = dirname(dir)) {
    const tsconfig = join(dir, 'tsconfig.json');
    if (existsSync(tsconfig)) {
      const opts = readTsconfigOptions(tsconfig);
      if (!opts.outDir) break;
      const rootDir = resolve(dir, opts.rootDir ?? '.');
      const rel = relative(rootDir, tsFile);
      if (rel.startsWith('..') || isAbsolute(rel)) break;
      return resolve(dir, opts.outDir, rel.slice(0, -extname(rel).length) + jsExt);
    }
    if (dirname(dir) === dir) break;
  }
  return tsFile.slice(0, -extname(tsFile).length) + jsExt;
}

function readTsconfigOptions(file: string): { outDir?: string; rootDir?: string } {
  try {
    // tsconfig is JSON with comments and trailing commas, which YAML 1.2 reads well enough
    const doc = parseDocument(readFileSync(file, 'utf8').replace(/^\s*\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, ''));
    const co = (doc.toJS() as { compilerOptions?: { outDir?: unknown; rootDir?: unknown } } | null)?.compilerOptions ?? {};
    return {
      outDir: typeof co.outDir === 'string' ? co.outDir : undefined,
      rootDir: typeof co.rootDir === 'string' ? co.rootDir : undefined,
    };
  } catch {
    return {};
  }
}

/**
 * Turn a guest module as written in a config file into the file: URL a guest worker imports.
 * Throws an Error with a message for the user when the file does not exist.
 */
export function resolveModule(module: string, baseDir: string, checkExists = true): string {
  const builtin = builtinModule(module);
  if (builtin !== null) return builtin;
  const path = module.startsWith('file:') ? fileURLToPath(module) : resolve(baseDir, module);
  let target = path;
  const ext = extname(path);
  if (ext === '.ts' || ext === '.mts') {
    target = compiledPathFor(path);
    if (checkExists && !isFile(target)) {
      throw new Error(`${module} is TypeScript; it maps to ${relative(process.cwd(), target) || target}, which does not exist (build with \`npx tsc -p .\`)`);
    }
  } else if (checkExists && !isFile(target)) {
    throw new Error(`no such file: ${relative(process.cwd(), target) || target}`);
  }
  return pathToFileURL(target).href;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

export interface LoadOptions {
  /** Check that guest modules exist (default true). */
  checkModules?: boolean;
}

/**
 * Read, parse and validate a config file. Throws ConfigError (code CONFIG_INVALID) whose message has
 * one `config: <path>: <message> (<file>:<line>)` line per problem.
 */
export function loadConfig(file: string, opts: LoadOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([{ path: '', message: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }]);
  }
  const { data, lineOf } = parseConfigText(text, file);
  if (data === null || data === undefined) throw new ConfigError([{ path: '', message: `${file} is empty; see docs/config.md for the format` }]);
  const baseDir = dirname(resolve(file));
  try {
    return validateConfig(data, { resolveModule: (m) => resolveModule(m, baseDir, opts.checkModules ?? true) });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    // in file order (zod lists an object's unknown keys after its other problems)
    const located = e.issues.map((i) => ({ i, line: lineOf(i.path) ?? 0 }));
    located.sort((a, b) => a.line - b.line);
    throw new ConfigError(located.map(({ i, line }): ConfigIssue => (line === 0 ? i : { ...i, message: `${i.message} (${file}:${line})` })));
  }
}

/** Built-in guest programs, written `svnic:<name>` in a config (e.g. `module: svnic:echo`). */
export const BUILTIN_PROGRAMS = ['echo', 'demo'] as const;

export function builtinModule(module: string): string | null {
  const m = /^svnic:([a-z]+)$/.exec(module);
  if (!m) return null;
  if (!(BUILTIN_PROGRAMS as readonly string[]).includes(m[1]!)) {
    throw new Error(`unknown built-in program "${module}"; built-ins: ${BUILTIN_PROGRAMS.map((b) => `svnic:${b}`).join(', ')}`);
  }
  return new URL(`../guest/programs/${m[1]}.js`, import.meta.url).href;
}
