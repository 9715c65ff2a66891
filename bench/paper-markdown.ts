/** `svnic bench paper --markdown FILE`: the result as the tables of docs/results-paper.md. */
import type { PaperResult } from './paper.js';
import type { PaperRow, Ratios } from './paper-report.js';

const f = (x: number | undefined, d = 2): string => (x !== undefined && Number.isFinite(x) ? x.toFixed(d) : '-');

function rowsTable(rows: PaperRow[]): string {
  const out = [
    '| path | N | frame B | Gbit/s | Mpps | per guest Gbit/s (min..max) | RTT p50 µs | RTT p99 µs | CPU ns/pkt | threads |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    out.push(`| ${r.path} | ${r.guests} | ${r.frameBytes} | ${f(r.gbps, 3)} | ${f(r.mpps, 3)} | ${f(r.perGuestGbps, 3)} (${f(r.minGuestGbps, 3)}..${f(r.maxGuestGbps, 3)}) | ${f(r.rttP50us, 0)} | ${f(r.rttP99us, 0)} | ${r.cpuNsPerPacket} | ${r.threads} |`);
  }
  return out.join('\n');
}

function ratiosTable(r: Ratios, rows: PaperRow[]): string {
  const out = [
    '| N | frame B | throughput svnic / dd | latency svnic / dd | CPU per packet dd / svnic | paper (>= 1.77, <= 0.47) |',
    '| ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const [n, bySize] of Object.entries(r)) {
    for (const [size, x] of Object.entries(bySize)) {
      const s = rows.find((q) => q.path === 'svnic' && String(q.guests) === n && String(q.frameBytes) === size);
      const d = rows.find((q) => q.path === 'driver-domain' && String(q.guests) === n && String(q.frameBytes) === size);
      const cpu = s && d ? d.cpuNsPerPacket / s.cpuNsPerPacket : NaN;
      const t = x.throughput >= 1.77 ? 'throughput met' : 'throughput short';
      const l = x.latency <= 0.47 ? 'latency met' : 'latency short';
      out.push(`| ${n} | ${size} | ${f(x.throughput)} | ${f(x.latency)} | ${f(cpu)} | ${t}, ${l} |`);
    }
  }
  return out.join('\n');
}

export function paperMarkdown(res: PaperResult): string {
  const parts: string[] = [];
  const m = res.machine;
  parts.push(`Run: \`${res.command}\`, ${res.date}, ${res.wallSeconds} s wall; ${m.cpus} x ${m.cpuModel}, ${m.totalMemGiB} GiB, Node ${m.node}; ` +
    `load average ${m.loadavgAtStart.join(' ')} at the start, ${m.loadavgAtEnd.join(' ')} at the end; ${res.rounds} rounds, ` +
    `${res.warmupMs} ms warm-up + ${res.durationMs} ms per trial; spin µs ${JSON.stringify(res.spinUs)}; ping gap ${res.pingGapUs} µs.`);
  for (const mode of Object.keys(res.ratiosByInterruptMode)) {
    const rows = res.rows.filter((r) => r.interruptMode === mode);
    parts.push(`### ${mode} interrupts\n\n${rowsTable(rows)}\n\n${ratiosTable(res.ratiosByInterruptMode[mode as 'direct']!, rows)}`);
  }
  if (res.scale) {
    const s = res.scale;
    const tp = Object.entries(s.throughput).map(([p, t]) =>
      `| ${p} | ${f(t.oneGuestMpps, 3)} | ${f(t.oneGuestGbps, 3)} | ${f(t.manyGuestsMpps, 3)} | ${f(t.manyGuestsGbps, 3)} | ${f(t.relative)} |`);
    parts.push(`### Scalability\n\n| | |\n| --- | --- |\n| VIFs on one device | ${s.vifs} (queue size ${s.queueSize}) |\n` +
      `| time to create them | ${f(s.createMs, 0)} ms (${f(s.createUsPerVif, 0)} µs each) |\n` +
      `| VIF memory (SharedArrayBuffer) | ${f(s.sabBytesPerVif / 1024, 0)} KiB each |\n` +
      `| array-buffer memory growth (process.memoryUsage) | ${f(s.arrayBufferBytesPerVif / 1024, 0)} KiB per VIF |\n` +
      `| resident-set growth (noisy) | ${f(s.rssBytesPerVif / 1024, 0)} KiB per VIF |\n` +
      `| idle device, every VIF live | ${f(s.idleCores, 2)} cores over ${s.idleWindowMs} ms; ${f(s.idleEngineSweepsPerS, 1)} sweeps/s, ${f(s.idleEngineWakeupsPerS, 1)} other wake-ups/s |\n\n` +
      `| path | 1 guest Mpps | 1 guest Gbit/s | ${s.manyGuests} guests Mpps | ${s.manyGuests} guests Gbit/s | ${s.manyGuests} / 1 |\n| --- | ---: | ---: | ---: | ---: | ---: |\n${tp.join('\n')}`);
  }
  return parts.join('\n\n') + '\n';
}
