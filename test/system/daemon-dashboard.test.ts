/**
 * The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core. While
 * test guests send traffic, the numbers on the page move (the total of frames from guests grows,
 * a VIF's rate becomes non-zero), the charts are drawn by uPlot (served by the daemon), and the VIF
 * table shows each VIF's QoS settings (none, then what the API gave one), the device row shows its VXLAN uplink with an rx_short drop the
 * test caused. A screenshot is saved to test-artifacts/dashboard.png.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { chromium } from 'playwright-core';
import { startDaemon } from '../../src/daemon/daemon.js';
import { daemonConfig, ROOT, tmp, freeUdpPort } from '../helpers/daemon.js';
import { needTool } from '../helpers/tools.js';

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

test('dashboard: live numbers move while guests send traffic; charts drawn; screenshot saved', { timeout: 180_000 }, async (t) => {
  const exe = needTool(t, 'chromium', 'chromium');
  if (!exe) return;
  const dir = tmp('sv7-dash-');
  // dev0's uplink: VXLAN on loopback (issue 4), so the uplink columns have something to show; one
  // datagram shorter than a VXLAN header becomes an rx_short drop.
  const port = await freeUdpPort();
  const uplink = `{ kind: vxlan, local: 127.0.0.1, port: ${port}, dstPort: ${await freeUdpPort()}, vnis: [ { vni: 42, remotes: [127.0.0.1] } ] }`;
  const d = await startDaemon({ config: daemonConfig(dir, { pps: 300, uplink }), socket: join(dir, 'api.sock'), listen: { host: '127.0.0.1', port: 0 }, stateDir: join(dir, 'state'), log: () => {} });
  const ctx = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), { executablePath: exe, headless: true, args: FLAGS, viewport: { width: 1400, height: 1100 } });
  try {
    const page = ctx.pages()[0] ?? await ctx.newPage();
    const failed: string[] = [];
    page.on('pageerror', (e) => failed.push(e.message));
    page.on('requestfailed', (r) => failed.push(`${r.url()}: ${r.failure()?.errorText}`));
    await page.goto(`${d.url}/`);
    await page.waitForFunction('document.getElementById("status").textContent === "live"', undefined, { timeout: 60_000 });

    // The total of frames sent by guests, read from the page, grows while the guests send.
    const total = async () => Number(await page.textContent('#total-tx-frames'));
    await page.waitForFunction('Number(document.getElementById("total-tx-frames").textContent) > 0', undefined, { timeout: 60_000 });
    const first = await total();
    await page.waitForFunction(`Number(document.getElementById("total-tx-frames").textContent) > ${first}`, undefined, { timeout: 60_000 });
    assert.ok((await total()) > first);
    // a VIF's frame rate on the page becomes non-zero, and the engine line is there
    await page.waitForSelector('td[data-vif="a0"][data-k="txPps"]:not([data-value="0"])', { timeout: 60_000 });
    assert.ok(Number(await page.getAttribute('td[data-vif="a0"][data-k="txPps"]', 'data-value')) > 0);
    assert.match(await page.textContent('[data-engine="dev0/0"]') ?? '', /%$/);
    // the page agrees with the API about which VIFs exist, and QoS is a marked placeholder
    const rows = await page.$$eval('#vif-table tbody tr td:first-child', (tds) => tds.map((x) => x.textContent));
    assert.deepEqual(rows.sort(), [...d.ctl.runtime.vifs.keys()].sort());
    // the QoS column (issue 6): b0 has none; a QoS block given to a0 through the API shows up
    assert.equal(await page.textContent('td[data-vif="b0"][data-k="qos"]'), 'none');
    await d.ctl.setVif('a0', { qos: { weight: 3, priority: 2, guestTx: { bitsPerSec: 5e6 } } });
    await page.waitForFunction('(document.querySelector(\'td[data-vif="a0"][data-k="qos"]\')?.textContent ?? "").startsWith("w3 p2 tx≤5.00Mb/s")', undefined, { timeout: 60_000 });
    // uPlot (from node_modules, via the daemon) drew the four charts
    await page.waitForFunction('document.querySelectorAll(".uplot canvas").length >= 4', undefined, { timeout: 60_000 });
    assert.equal(await page.evaluate('typeof window.uPlot'), 'function');
    // devices with their uplink, and the change history (the startup apply)
    await page.waitForSelector('#device-table tbody tr', { timeout: 60_000 });
    assert.match(await page.textContent('#device-table tbody tr') ?? '', new RegExp(`^dev0\\s*1\\s*vxlan VNI 42 port ${port}\\s*2`));
    const s = createSocket('udp4');
    await new Promise<void>((r, j) => s.send(Buffer.from([8, 0]), port, '127.0.0.1', (e) => (e ? j(e) : r())));
    s.close();
    await page.waitForFunction('(document.querySelector("tr[data-device=dev0] .up-drops")?.textContent ?? "") === "1 rx_short"', undefined, { timeout: 60_000 });
    assert.equal(await page.textContent('tr[data-device="dev0"] .up-fdb'), '0', 'nothing learned: the floods go to a port nobody answers on');
    assert.match(await page.textContent('#changes') ?? '', /startup generation 1: device dev0 added; guest a added/);
    // benchmark results from docs/ and bench/results/
    await page.waitForSelector('[data-bench="core"]', { timeout: 60_000 });
    assert.deepEqual(failed, []);

    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'test-artifacts', 'dashboard.png'), fullPage: true });
  } finally {
    await ctx.close();
    await d.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
