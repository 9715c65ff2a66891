/**
 * /metrics against Prometheus's own checker: `promtool check metrics` (Debian package prometheus)
 * accepts the output of a daemon whose guests send traffic, and the values are the shared-memory
 * counters (the same numbers the API reports).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon } from '../../src/daemon/daemon.js';
import { Client } from '../../src/cli/client.js';
import { daemonConfig, tmp, freeUdpPort } from '../helpers/daemon.js';
import { until } from '../helpers/until.js';
import { needTool } from '../helpers/tools.js';

test('promtool check metrics accepts /metrics; per-VIF, drop-reason, engine and uplink series are there', { timeout: 120_000 }, async (t) => {
  const promtool = needTool(t, 'promtool', 'prometheus');
  if (!promtool) return;
  const dir = tmp('sv7-metrics-');
  // dev0's uplink is a VXLAN tunnel on loopback (issue 4), so the uplink series are checked too;
  // its floods go to a port nobody listens on, and one short datagram makes an rx_short drop.
  const port = await freeUdpPort();
  const dstPort = await freeUdpPort();
  const uplink = `{ kind: vxlan, local: 127.0.0.1, port: ${port}, dstPort: ${dstPort}, vnis: [ { vni: 42, remotes: [127.0.0.1] } ] }`;
  const d = await startDaemon({ config: daemonConfig(dir, { pps: 200, uplink }), socket: join(dir, 'api.sock'), persist: false, log: () => {} });
  try {
    const s = createSocket('udp4');
    await new Promise<void>((r, j) => s.send(Buffer.from([8, 0, 0, 0]), port, '127.0.0.1', (e) => (e ? j(e) : r())));
    s.close();
    const c = new Client({ socket: d.socket });
    await c.call('PATCH', '/v1/vifs/b0', { linkUp: false }); // b0's sends become tx_link_down drops
    await c.call('PATCH', '/v1/vifs/a0', { qos: { weight: 2, priority: 1, guestTx: { bitsPerSec: 1e6 } } }); // QoS series (issue 6)
    await until(() => {
      const a = d.ctl.runtime.vifs.get('a0')!.vif.counters();
      const b = d.ctl.runtime.vifs.get('b0')!.vif.counters();
      return a.tx_frames > 0 && b.tx_link_down > 0 && d.ctl.runtime.uplinks.get('dev0')!.counters().rx_short === 1 && d.ctl.runtime.uplinks.get('dev0')!.counters().tx_frames > 0;
    }, 'traffic from a0, link-down drops on b0, frames into the tunnel and the short datagram counted');
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
    assert.equal(value(/^svnic_vif_qos_weight\{device="dev0",guest="a",vif="a0"\} /), 2);
    assert.equal(value(/^svnic_vif_qos_limit_bytes_per_second\{device="dev0",guest="a",vif="a0",direction="guest_tx"\} /), 1e6 / 8);
    assert.ok(value(/^svnic_vif_qos_events_total\{device="dev0",guest="b",vif="b0",event="tx_holds"\} /) >= 0);
    assert.equal(value(/^svnic_device_qos_capacity_bytes_per_second\{device="dev0"\} /), 0);
    assert.equal(value(/^svnic_uplink_info\{device="dev0",kind="vxlan"\} /), 1);
    assert.ok(value(/^svnic_uplink_frames_total\{device="dev0",kind="vxlan",direction="to_network"\} /) > 0);
    assert.equal(value(/^svnic_uplink_drops_total\{device="dev0",kind="vxlan",reason="rx_short"\} /), 1);
    assert.equal(value(/^svnic_uplink_drops_total\{device="dev0",kind="vxlan",reason="rx_unknown_vni"\} /), 0);
    assert.equal(value(/^svnic_uplink_fdb_entries\{device="dev0",kind="vxlan"\} /), 0);
    assert.equal(value(/^svnic_uplink_fdb_events_total\{device="dev0",kind="vxlan",event="learn_full"\} /), 0);

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
