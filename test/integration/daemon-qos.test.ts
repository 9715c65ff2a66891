/**
 * QoS (issue 6) in the daemon: per-VIF `qos` blocks are applied at start and changed live (same
 * VIF), shown by the API and /metrics (settings and the QoS counters), and admission control
 * answers with its stable codes as 409s that change nothing. A plan that lowers one guarantee and
 * raises another within the capacity goes through, whatever the order of the VIFs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { http, tmp, TRAFFIC } from '../helpers/daemon.js';
import { until } from '../helpers/until.js';

let d: Daemon;
let dir: string;
let auth: Record<string, string>;
const doc = (aQos: object, bQos: object, capacity: number | null = 1e8) => ({
  device: { name: 'dev0', uplink: 'null', ...(capacity !== null ? { qos: { capacityBitsPerSec: capacity } } : {}) },
  guests: [
    { name: 'a', module: TRAFFIC, args: { pps: 200 }, vifs: [{ name: 'a0', mac: '02:00:00:07:06:0a', qos: aQos }] },
    { name: 'b', module: TRAFFIC, args: { pps: 50 }, vifs: [{ name: 'b0', mac: '02:00:00:07:06:0b', qos: bQos }] },
  ],
});

const metric = (text: string, prefix: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${prefix} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
};

/** What a refused change must leave alone. */
const state = () => JSON.stringify({
  gen: d.ctl.generation, doc: d.ctl.doc,
  vifs: [...d.ctl.runtime.vifs.values()].map((r) => [r.vif.id, r.vif.slot, r.vif.settings]),
});

before(async () => {
  dir = tmp('sv7-qos-');
  writeFileSync(join(dir, 'svnic.json'), JSON.stringify(doc({ weight: 2, guestTx: { framesPerSec: 50 }, guaranteedBitsPerSec: 4e7 }, { guaranteedBitsPerSec: 5e7 })));
  d = await startDaemon({ config: join(dir, 'svnic.json'), socket: join(dir, 'api.sock'), listen: { host: '127.0.0.1', port: 0 }, persist: false, log: () => {} });
  auth = { authorization: `Bearer ${readFileSync(d.tokenFile!, 'utf8').trim()}` };
});
after(async () => {
  await d?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('QoS settings at start: in the VIF view and /metrics; a guest over its TX limit is held (counted)', { timeout: 60_000 }, async () => {
  const a0 = (await http(d.url!, 'GET', '/v1/vifs/a0')).body as any;
  assert.deepEqual(a0.qos, { weight: 2, guestTx: { framesPerSec: 50 }, guaranteedBitsPerSec: 4e7 });
  assert.deepEqual(d.ctl.runtime.vifs.get('a0')!.vif.settings.qos, a0.qos, 'the device holds what the view shows');
  // a sends 200 frames/s against a 50 frames/s limit: the device holds its transmit queue
  await until(() => d.ctl.runtime.vifs.get('a0')!.vif.counters().qos_tx_holds > 0, 'a0 held by its guest TX limit');
  const text = (await http(d.url!, 'GET', '/metrics')).body as unknown as string;
  const l = 'device="dev0",guest="a",vif="a0"';
  assert.equal(metric(text, `svnic_vif_qos_weight{${l}}`), 2);
  assert.equal(metric(text, `svnic_vif_qos_priority{${l}}`), 0);
  assert.equal(metric(text, `svnic_vif_qos_guaranteed_bytes_per_second{${l}}`), 4e7 / 8);
  assert.equal(metric(text, `svnic_vif_qos_guaranteed_bytes_per_second{device="dev0",guest="b",vif="b0"}`), 5e7 / 8);
  assert.equal(metric(text, `svnic_vif_qos_limit_bytes_per_second{${l},direction="guest_tx"}`), undefined, 'a frame limit, no bit limit');
  assert.ok(metric(text, `svnic_vif_qos_events_total{${l},event="tx_holds"}`)! > 0);
  assert.equal(metric(text, `svnic_vif_qos_events_total{device="dev0",guest="b",vif="b0",event="tx_holds"}`), 0);
  assert.equal(metric(text, `svnic_vif_drops_total{${l},reason="rx_qos_overflow"}`), 0, 'the QoS drops are drop reasons');
  assert.equal(metric(text, 'svnic_device_qos_capacity_bytes_per_second{device="dev0"}'), 1e8 / 8);
});

test('admission control: a guarantee over the capacity is 409 QOS_OVERCOMMIT, none left is 409 QOS_NO_CAPACITY; nothing changes', { timeout: 60_000 }, async () => {
  const before = state();
  const over = await http(d.url!, 'PATCH', '/v1/vifs/b0', { qos: { guaranteedBitsPerSec: 7e7 } }, auth);
  assert.deepEqual([over.status, over.body.code], [409, 'QOS_OVERCOMMIT'], JSON.stringify(over.body));
  assert.match(String(over.body.message), /add up to 110000000 bit\/s, more than the capacity 100000000/);
  assert.equal(state(), before);
  const noCap = await http(d.url!, 'PUT', '/v1/config', doc({ guaranteedBitsPerSec: 4e7 }, {}, null), auth);
  assert.deepEqual([noCap.status, noCap.body.code], [409, 'QOS_NO_CAPACITY'], JSON.stringify(noCap.body));
  assert.equal(state(), before);
  const bad = await http(d.url!, 'PATCH', '/v1/vifs/a0', { qos: { weight: 0 } }, auth);
  assert.deepEqual([bad.status, bad.body.code], [400, 'OUT_OF_RANGE']);
  assert.equal(state(), before);
});

test('a guarantee raised on one VIF and lowered on another in one change: applied live, lowered first', { timeout: 60_000 }, async () => {
  const a0 = d.ctl.runtime.vifs.get('a0')!.vif;
  const b0 = d.ctl.runtime.vifs.get('b0')!.vif;
  // a0 4e7 -> 8e7 and b0 5e7 -> 1e7: a0 comes first in the running order, and 8e7 + 5e7 would not fit
  const r = await http(d.url!, 'PUT', '/v1/config', doc({ weight: 2, guestTx: { framesPerSec: 50 }, guaranteedBitsPerSec: 8e7 }, { guaranteedBitsPerSec: 1e7 }), auth);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual((r.body.changes as any[]).map((c) => [c.name, c.action, Object.keys(c.fields)]), [['a0', 'changed', ['qos']], ['b0', 'changed', ['qos']]]);
  assert.equal(d.ctl.runtime.vifs.get('a0')!.vif, a0, 'same VIF');
  assert.equal(d.ctl.runtime.vifs.get('b0')!.vif, b0, 'same VIF');
  assert.equal(a0.settings.qos!.guaranteedBitsPerSec, 8e7);
  assert.equal(b0.settings.qos!.guaranteedBitsPerSec, 1e7);
});

test('PATCH qos: null removes a VIF\'s QoS in place; its QoS series go', { timeout: 60_000 }, async () => {
  const a0 = d.ctl.runtime.vifs.get('a0')!.vif;
  const r = await http(d.url!, 'PATCH', '/v1/vifs/a0', { qos: null }, auth);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((r.body.vif as any).qos, null);
  assert.equal(d.ctl.runtime.vifs.get('a0')!.vif, a0);
  const text = (await http(d.url!, 'GET', '/metrics')).body as unknown as string;
  assert.equal(metric(text, 'svnic_vif_qos_weight{device="dev0",guest="a",vif="a0"}'), undefined);
  assert.equal(metric(text, 'svnic_vif_qos_guaranteed_bytes_per_second{device="dev0",guest="b",vif="b0"}'), 1e7 / 8);
});
