/**
 * /metrics against Prometheus's own checker: `promtool check metrics` (Debian package prometheus)
 * accepts the output of a daemon whose guests send traffic, and the values are the shared-memory
 * counters (the same numbers the API reports).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon } from '../../src/daemon/daemon.js';
import { Client } from '../../src/cli/client.js';
import { daemonConfig, tmp } from '../helpers/daemon.js';
import { until } from '../helpers/until.js';
import { needTool } from '../helpers/tools.js';

test('promtool check metrics accepts /metrics; per-VIF, drop-reason and engine series are there', { timeout: 120_000 }, async (t) => {
  const promtool = needTool(t, 'promtool', 'prometheus');
  if (!promtool) return;
  const dir = tmp('sv7-metrics-');
  const d = await startDaemon({ config: daemonConfig(dir, { pps: 200 }), socket: join(dir, 'api.sock'), persist: false, log: () => {} });
  try {
    const c = new Client({ socket: d.socket });
    await c.call('PATCH', '/v1/vifs/b0', { linkUp: false }); // b0's sends become tx_link_down drops
    await until(() => {
      const a = d.ctl.runtime.vifs.get('a0')!.vif.counters();
      const b = d.ctl.runtime.vifs.get('b0')!.vif.counters();
      return a.tx_frames > 0 && b.tx_link_down > 0;
    }, 'traffic from a0 and link-down drops on b0');
    const text = await c.call<string>('GET', '/metrics');
    const r = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool check metrics:\n${r.stdout}${r.stderr}`);
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no lint warnings either');

    const value = (re: RegExp) => {
      const m = text.split('\n').find((l) => re.test(l));
      assert.ok(m, `a line matching ${re}`);
      return Number(m.split(' ').pop());
    };
    assert.ok(value(/^svnic_vif_frames_total\{device="dev0",guest="a",vif="a0",direction="from_guest"\} /) > 0);
    assert.ok(value(/^svnic_vif_drops_total\{device="dev0",guest="b",vif="b0",reason="tx_link_down"\} /) > 0);
    assert.equal(value(/^svnic_vif_drops_total\{device="dev0",guest="a",vif="a0",reason="tx_spoofed_mac"\} /), 0);
    assert.ok(value(/^svnic_engine_sleeps_total\{device="dev0",engine="0"\} /) > 0);
    assert.ok(value(/^svnic_engine_busy_seconds_total\{device="dev0",engine="0"\} /) >= 0);
    const busy = value(/^svnic_engine_busy_ratio\{device="dev0",engine="0"\} /);
    assert.ok(busy >= 0 && busy <= 1);
    assert.ok(/^svnic_engine_wakeups_total\{device="dev0",engine="0"\} \d+/m.test(text));
    assert.equal(value(/^svnic_daemon_vifs /), 2);

    // The values are the counters (read at scrape time): a later scrape is never behind an API read before it.
    const api = (await c.call<Record<string, Record<string, number>>>('GET', '/v1/counters') as unknown as { vifs: Record<string, Record<string, number>> }).vifs.a0!.tx_frames!;
    const again = await c.call<string>('GET', '/metrics');
    const later = Number(again.split('\n').find((l) => l.startsWith('svnic_vif_frames_total{device="dev0",guest="a",vif="a0",direction="from_guest"}'))!.split(' ').pop());
    assert.ok(later >= api);
  } finally {
    await d.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
