/**
 * The dashboard's files and the benchmark results it shows. Only named files are served (a fixed
 * table, plus the docs/ files whose names match a pattern and that exist when listed): no path from
 * a request ever reaches the file system. uPlot comes from node_modules (no CDN).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.js';
import { anyObject, errors } from './api-schemas.js';

/** The repository (or package) root: dist/src/daemon/ -> ../../.. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DASHBOARD = join(ROOT, 'src', 'daemon', 'dashboard');
const UPLOT = join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');

const FILES: Record<string, { path: string; type: string }> = {
  '/dashboard/': { path: join(DASHBOARD, 'index.html'), type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { path: join(DASHBOARD, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/dashboard/style.css': { path: join(DASHBOARD, 'style.css'), type: 'text/css; charset=utf-8' },
  '/vendor/uplot/uPlot.iife.min.js': { path: join(UPLOT, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/vendor/uplot/uPlot.min.css': { path: join(UPLOT, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

const DOC_FILE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}\.(svg|md|png)$/;
const TYPES: Record<string, string> = { svg: 'image/svg+xml', md: 'text/markdown; charset=utf-8', png: 'image/png' };

const listDir = (dir: string, re: RegExp): string[] => {
  try {
    return readdirSync(dir).filter((f) => re.test(f)).sort();
  } catch {
    return [];
  }
};

export interface BenchmarkResult {
  name: string;
  /** docs/results-<name>.md, if present */
  page?: string;
  markdown?: string;
  /** SVG plots in docs/ whose names start with the benchmark's name (or are linked from the page) */
  plots: string[];
  /** bench/results/<name>.json, if present: its command, date, machine and rows */
  json?: { command?: string; date?: string; machine?: unknown; rows?: unknown[] };
}

/** The latest benchmark results: docs/results-*.md pages, their plots, and bench/results/*.json. */
export function benchmarkResults(root = ROOT): BenchmarkResult[] {
  const docs = join(root, 'docs');
  const svgs = listDir(docs, /\.svg$/);
  const out = new Map<string, BenchmarkResult>();
  for (const f of listDir(docs, /^results-[A-Za-z0-9_.-]+\.md$/)) {
    const name = f.slice('results-'.length, -3);
    const markdown = readFileSync(join(docs, f), 'utf8');
    const linked = svgs.filter((s) => markdown.includes(s));
    const plots = [...new Set([...linked, ...svgs.filter((s) => s.startsWith(`${name}-`) || s.startsWith(`results-${name}`))])];
    out.set(name, { name, page: f, markdown, plots });
  }
  for (const f of listDir(join(root, 'bench', 'results'), /\.json$/)) {
    const name = f.slice(0, -5);
    try {
      const j = JSON.parse(readFileSync(join(root, 'bench', 'results', f), 'utf8')) as BenchmarkResult['json'] & Record<string, unknown>;
      const e = out.get(name) ?? { name, plots: [] };
      e.json = { command: j.command, date: j.date, machine: j.machine, rows: Array.isArray(j.rows) ? j.rows : [] };
      out.set(name, e);
    } catch {
      // not JSON: skip it
    }
  }
  return [...out.values()];
}

export function registerStatic(app: FastifyInstance): void {
  const hidden = { schema: { hide: true } };
  app.get('/', hidden, async (_req, reply) => reply.redirect('/dashboard/'));
  app.get('/dashboard', hidden, async (_req, reply) => reply.redirect('/dashboard/'));
  for (const [url, f] of Object.entries(FILES)) {
    app.get(url, hidden, async (_req, reply) => {
      void reply.type(f.type).header('cache-control', 'no-cache');
      return readFileSync(f.path);
    });
  }
  app.get('/v1/benchmarks', { schema: { tags: ['benchmarks'], summary: 'Latest benchmark results (docs/results-*.md, bench/results/*.json) and their plots', response: { 200: { type: 'array', items: anyObject } } } },
    async () => benchmarkResults());
  app.get('/v1/benchmarks/files/:file', {
    schema: {
      tags: ['benchmarks'], summary: 'A plot or results page from docs/',
      params: { type: 'object', properties: { file: { type: 'string', pattern: DOC_FILE.source } }, required: ['file'], additionalProperties: false },
      response: errors(404),
    },
  }, async (req, reply) => {
    const { file } = req.params as { file: string };
    const docs = join(ROOT, 'docs');
    if (!listDir(docs, DOC_FILE).includes(file) || !statSync(join(docs, file)).isFile()) throw new ApiError('NOT_FOUND', 404, `no file docs/${file}`);
    void reply.type(TYPES[file.split('.').pop()!]!);
    return readFileSync(join(docs, file));
  });
}
