/**
 * Plots of `svnic bench paper`, in the style of the paper's figures (a line per path, the number
 * of guests on the x axis): throughput vs N and round-trip latency vs N, for 64 B and 1500 B
 * frames. Made with vega-lite and rendered to SVG by vega's headless view (no browser).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { PaperRow } from './paper-report.js';

async function render(spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

function lineSpec(rows: PaperRow[], field: 'gbps' | 'rttP50us', title: string, yTitle: string, subtitle: string): vl.TopLevelSpec {
  const values = rows
    .filter((r) => Number.isFinite(r[field]))
    .map((r) => ({ guests: r.guests, value: r[field], path: r.path, frame: `${r.frameBytes} B`, mode: r.interruptMode }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: title, subtitle },
    data: { values },
    columns: 2,
    config: { legend: { orient: 'bottom', direction: 'horizontal' } },
    facet: { field: 'frame', type: 'nominal', title: null, sort: ['64 B', '1500 B'] },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 300,
      height: 220,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'guests', type: 'quantitative', scale: { type: 'log', base: 2 }, axis: { values: [1, 2, 4, 8, 16, 32, 64], title: 'guests (N)' } },
        y: { field: 'value', type: 'quantitative', title: yTitle, scale: { zero: field === 'gbps' } },
        color: { field: 'path', type: 'nominal', title: 'path', scale: { domain: ['svnic', 'driver-domain'], range: ['#1f77b4', '#d62728'] } },
        strokeDash: { field: 'mode', type: 'nominal', scale: { domain: ['direct', 'hypervisor'], range: [[1, 0], [5, 3]] }, legend: null },
        shape: { field: 'mode', type: 'nominal', title: 'interrupts (solid: direct, dashed: hypervisor)', scale: { domain: ['direct', 'hypervisor'], range: ['circle', 'square'] } },
      },
    },
  } as vl.TopLevelSpec;
}

/** Write the plots into `dir`; returns the files written. */
export async function writePlots(rows: PaperRow[], dir: string, meta: { date: string; machine: string }): Promise<string[]> {
  const sub = `svnic bench paper, ${meta.machine}, ${meta.date.slice(0, 10)}; medians over rounds; solid: direct interrupts, dashed (squares): hypervisor`;
  const files: [string, vl.TopLevelSpec][] = [
    ['paper-throughput.svg', lineSpec(rows, 'gbps', 'Throughput to the peer host vs number of guests', 'aggregate Gbit/s', sub)],
    ['paper-latency.svg', lineSpec(rows, 'rttP50us', 'Round-trip latency to the peer host (p50) vs number of guests', 'RTT p50 (µs)', sub)],
  ];
  const out: string[] = [];
  for (const [name, spec] of files) {
    const p = join(dir, name);
    await writeFile(p, await render(spec));
    out.push(p);
  }
  return out;
}
