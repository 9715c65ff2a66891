// svnicd dashboard: polls the daemon's API (same origin) and draws with uPlot (served by the daemon).
// Plain browser JavaScript, no build step. Every number shown comes from GET /v1/stats, /v1/vifs,
// /v1/health and /v1/benchmarks.
'use strict';
const WINDOW = 120; // samples kept in the charts (one per second)
const $ = (id) => document.getElementById(id);
const get = async (path) => {
  const r = await fetch(path, { headers: { accept: 'application/json' } });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
};
const si = (n) => {
  const a = Math.abs(n);
  const [d, s] = a >= 1e9 ? [1e9, 'G'] : a >= 1e6 ? [1e6, 'M'] : a >= 1e3 ? [1e3, 'k'] : [1, ''];
  return d === 1 ? String(Math.round(n)) : (n / d).toFixed(2) + s;
};
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const COLORS = ['#4263eb', '#e8590c', '#2b8a3e', '#ae3ec9', '#1098ad', '#f08c00', '#c2255c', '#5c940d', '#364fc7', '#862e9c'];

// ---- charts: one uPlot per metric, one series per VIF; rebuilt when the set of VIFs changes
const history = []; // Stats objects, oldest first
const charts = {};
function seriesData(keys, pick) {
  const xs = history.map((s) => s.t / 1000);
  const data = [xs];
  for (const k of keys) data.push(history.map((s) => pick(s, k)));
  return data;
}
function chart(id, keys, pick, fmt) {
  const el = $(id);
  const sig = keys.join('|');
  const data = seriesData(keys, pick);
  const c = charts[id];
  if (c && c.sig === sig) {
    c.plot.setData(data);
    return;
  }
  if (c) c.plot.destroy();
  const opts = {
    width: Math.max(400, el.clientWidth || 560), height: 220,
    scales: { x: { time: true } },
    axes: [{}, { values: (_u, v) => v.map(fmt), size: 60 }],
    series: [{}, ...keys.map((k, i) => ({ label: k, stroke: COLORS[i % COLORS.length], width: 1.5, value: (_u, v) => (v == null ? '-' : fmt(v)) }))],
  };
  charts[id] = { sig, plot: new uPlot(opts, data, el) };
}
const vifVal = (field) => (s, k) => { const v = s.vifs.find((x) => x.name === k); return v ? v[field] : null; };
const vifSum = (a, b) => (s, k) => { const v = s.vifs.find((x) => x.name === k); return v ? v[a] + v[b] : null; };

function drawCharts() {
  const last = history[history.length - 1];
  if (!last) return;
  const vifs = last.vifs.map((v) => v.name).sort();
  const engines = last.engines.map((e) => `${e.device}/${e.engine}`);
  chart('chart-bps', vifs, vifSum('txBps', 'rxBps'), si);
  chart('chart-pps', vifs, vifSum('txPps', 'rxPps'), si);
  chart('chart-drops', vifs, vifVal('dropsPs'), si);
  chart('chart-engines', engines, (s, k) => { const e = s.engines.find((x) => `${x.device}/${x.engine}` === k); return e ? e.busy * 100 : null; }, (v) => v.toFixed(0) + '%');
  $('engines').innerHTML = last.engines.map((e) => `<div>${esc(e.device)}/${e.engine} <span class="bar" style="width:${(e.busy * 200).toFixed(0)}px"></span> <b data-engine="${esc(e.device)}/${e.engine}">${(e.busy * 100).toFixed(1)}%</b> busy · ${si(e.sleepsPs)} sleeps/s · ${si(e.wakeupsPs)} wake-ups/s</div>`).join('');
  const tot = last.vifs.reduce((a, v) => ({ tx: a.tx + v.txPps, rx: a.rx + v.rxPps, d: a.d + v.dropsPs, f: a.f + v.txFrames }), { tx: 0, rx: 0, d: 0, f: 0 });
  $('total-tx-pps').textContent = si(tot.tx);
  $('total-rx-pps').textContent = si(tot.rx);
  $('total-drops-ps').textContent = si(tot.d);
  $('total-tx-frames').textContent = String(tot.f);
}

// ---- the VIF table
function drawTable(vifs, stats) {
  const rate = new Map((stats ? stats.vifs : []).map((v) => [v.name, v]));
  $('vif-count').textContent = String(vifs.length);
  $('vif-table').querySelector('tbody').innerHTML = vifs.map((v) => {
    const r = rate.get(v.name) || { txPps: 0, rxPps: 0, txBps: 0, rxBps: 0, dropsPs: 0 };
    const top = Object.entries(v.dropReasons || {}).sort((a, b) => b[1] - a[1])[0];
    const qos = v.qos === null || v.qos === undefined ? '<span class="muted">none</span>'
      : `<span title="${esc(JSON.stringify(v.qos))}">${esc(qosText(v.qos))}</span>`
        + (v.qosEvents && (v.qosEvents.txHolds || v.qosEvents.rxQueued) ? ` <span class="muted" title="guest TX held by its limit / frames that waited for guest RX">holds ${v.qosEvents.txHolds}/${v.qosEvents.rxQueued}</span>` : '');
    const n = (k, val, txt) => `<td class="num" data-vif="${esc(v.name)}" data-k="${k}" data-value="${val}">${txt}</td>`;
    return `<tr class="${esc(v.state)}"><td>${esc(v.name)}</td><td>${esc(v.guest)}</td><td>${esc(v.device)}</td><td>${esc(v.state)}</td>`
      + `<td>${esc(v.mac)}</td><td class="num">${v.mtu}</td><td class="num">${v.segment}</td><td>${v.linkUp ? 'up' : 'down'}</td><td data-vif="${esc(v.name)}" data-k="qos">${qos}</td>`
      + n('txPps', r.txPps, si(r.txPps)) + n('rxPps', r.rxPps, si(r.rxPps)) + n('txBps', r.txBps, si(r.txBps)) + n('rxBps', r.rxBps, si(r.rxBps))
      + n('dropsPs', r.dropsPs, si(r.dropsPs)) + n('drops', v.drops, String(v.drops)) + `<td>${top ? esc(`${top[0]}=${top[1]}`) : '-'}</td></tr>`;
  }).join('');
}

/** A VIF's QoS settings in a few characters: weight, priority, limits (bit/s), guarantee. */
function qosText(q) {
  const parts = [];
  if (q.weight !== undefined) parts.push(`w${q.weight}`);
  if (q.priority) parts.push(`p${q.priority}`);
  const lim = (l) => [l.bitsPerSec ? `${si(l.bitsPerSec)}b/s` : '', l.framesPerSec ? `${si(l.framesPerSec)}f/s` : ''].filter(Boolean).join(',');
  if (q.guestTx && lim(q.guestTx)) parts.push(`tx≤${lim(q.guestTx)}`);
  if (q.guestRx && lim(q.guestRx)) parts.push(`rx≤${lim(q.guestRx)}`);
  if (q.guaranteedBitsPerSec) parts.push(`min ${si(q.guaranteedBitsPerSec)}b/s`);
  return parts.join(' ') || 'default';
}

// ---- devices and the change history
function drawDevices(devices) {
  $('device-table').querySelector('tbody').innerHTML = devices.map((d) => {
    const c = d.counters || {};
    const u = d.uplinkState || {};
    const up = d.uplink && d.uplink.kind ? d.uplink.kind + (d.uplink.peer ? ` to ${d.uplink.peer}` : '')
      + (d.uplink.vnis ? ` VNI ${d.uplink.vnis.map((v) => v.vni).join(',')} port ${d.uplink.port}` : '') + (u.ifname ? ` ${u.ifname}` : '') : '';
    // uplink drops (VXLAN/TAP: by reason, the top one shown) and the VXLAN learned-MAC table's size
    const reasons = Object.entries(u.dropReasons || {}).sort((a, b) => b[1] - a[1]);
    const upDrops = u.drops === undefined ? '' : `${u.drops}${reasons.length ? ` <span class="muted">${esc(reasons[0][0])}</span>` : ''}`;
    return `<tr data-device="${esc(d.name)}"><td>${esc(d.name)}</td><td class="num">${d.engines}</td><td>${esc(up)}</td><td class="num">${d.vifs}</td>`
      + `<td class="num">${c.uplink_tx_frames ?? 0}</td><td class="num">${c.uplink_rx_frames ?? 0}</td><td class="num">${c.flood_copies ?? 0}</td>`
      + `<td class="num" title="${esc(JSON.stringify(d.dropReasons || {}))}">${d.drops}</td>`
      + `<td class="num up-drops" title="${esc(JSON.stringify(u.dropReasons || {}))}">${upDrops}</td><td class="num up-fdb">${u.fdbEntries ?? '-'}</td>`
      + `<td class="num">${d.unaccounted}</td></tr>`;
  }).join('');
}
function drawChanges(config) {
  const h = (config.history || []).slice().reverse();
  $('changes').innerHTML = h.length ? h.map((r) => `<li class="${r.ok ? '' : 'bad'}">${esc(r.at.slice(11, 19))} ${esc(r.source)} `
    + (r.ok ? `generation ${r.generation}: ${r.summary.length ? esc(r.summary.join('; ')) : 'no changes'}` : `refused (${esc(r.error.code)}): ${esc(r.error.message.split('\n')[0])}`) + '</li>').join('')
    : '<li class="muted">none yet</li>';
}

// ---- benchmark results: the results pages (a small Markdown subset), their SVG plots, and a bar
// chart of the throughput rows of the JSON results
function md(text) {
  const out = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (/^\|/.test(l)) {
      const rows = [];
      while (i < lines.length && /^\|/.test(lines[i])) rows.push(lines[i++]);
      i--;
      const cells = (r) => r.replace(/^\||\|$/g, '').split('|').map((c) => esc(c.trim()));
      const body = rows.filter((r) => !/^\|[\s:|-]+\|$/.test(r));
      out.push(`<table>${body.map((r, j) => `<tr>${cells(r).map((c) => (j === 0 ? `<th>${c}</th>` : `<td>${c}</td>`)).join('')}</tr>`).join('')}</table>`);
    } else if (/^#{1,6} /.test(l)) out.push(`<h3>${esc(l.replace(/^#+ /, ''))}</h3>`);
    else if (/^```/.test(l)) {
      const code = [];
      for (i++; i < lines.length && !/^```/.test(lines[i]); i++) code.push(lines[i]);
      out.push(`<pre>${esc(code.join('\n'))}</pre>`);
    } else if (l.trim() && !/^!\[/.test(l)) out.push(`<p>${esc(l)}</p>`);
  }
  return out.join('\n');
}
function benchBars(rows) {
  const t = rows.filter((r) => r && typeof r.mpps === 'number' && r.kind === 'throughput');
  if (!t.length) return '';
  const max = Math.max(...t.map((r) => r.mpps));
  return `<h3>Throughput (Mpps, median)</h3>` + t.map((r) => `<div><span style="display:inline-block;width:22em">${esc(r.name)} ${r.frameBytes} B</span><span class="bar" style="width:${((r.mpps / max) * 300).toFixed(0)}px"></span> ${r.mpps.toFixed(2)} Mpps</div>`).join('');
}
async function drawBenchmarks() {
  const list = await get('/v1/benchmarks');
  $('benchmarks').innerHTML = list.length ? list.map((b) => `<div class="bench" data-bench="${esc(b.name)}">
    <h3>${esc(b.name)}${b.json && b.json.date ? ` <small class="muted">${esc(b.json.date)}</small>` : ''}</h3>
    ${b.json && b.json.command ? `<p class="muted">${esc(b.json.command)}</p>` : ''}
    ${b.plots.map((p) => `<img alt="${esc(p)}" src="/v1/benchmarks/files/${encodeURIComponent(p)}">`).join('')}
    ${b.json ? benchBars(b.json.rows || []) : ''}
    ${b.markdown ? `<details><summary>docs/${esc(b.page)}</summary>${md(b.markdown)}</details>` : ''}
  </div>`).join('') : '<p class="muted">no results yet (docs/results-*.md, bench/results/*.json)</p>';
}

// ---- polling
let lastGeneration = -1;
let slow = 0;
async function tick() {
  try {
    const [stats, vifs, health] = await Promise.all([get('/v1/stats'), get('/v1/vifs'), get('/v1/health')]);
    if (!history.length || history[history.length - 1].t !== stats.t) history.push(stats);
    while (history.length > WINDOW) history.shift();
    $('status').textContent = 'live';
    $('status').className = 'pill ok';
    $('generation').textContent = String(health.generation);
    $('uptime').textContent = `${health.uptimeS} s`;
    drawTable(vifs, stats);
    drawCharts();
    if (health.generation !== lastGeneration || ++slow % 3 === 0) {
      lastGeneration = health.generation;
      const [devices, config] = await Promise.all([get('/v1/devices'), get('/v1/config')]);
      drawDevices(devices);
      drawChanges(config);
    }
  } catch (e) {
    $('status').textContent = `offline: ${e.message}`;
    $('status').className = 'pill bad';
  }
}
(async () => {
  try {
    for (const s of await get(`/v1/stats/history?n=${WINDOW}`)) history.push(s);
  } catch { /* the first tick reports it */ }
  await tick();
  setInterval(tick, 1000);
  drawBenchmarks().catch((e) => { $('benchmarks').textContent = `could not load results: ${e.message}`; });
})();
