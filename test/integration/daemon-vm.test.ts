/**
 * VM guests in the daemon (issue 5, `vms:`): a config with an isolate traffic guest and a VM guest
 * whose VIF is served on a vhost-user socket. A scripted vhost-user front-end (the part QEMU plays,
 * over a real socket with memfd RAM and eventfds: test/helpers/vhost-frontend.ts) connects to the
 * socket the daemon opened; frames flow both ways between the VM and the isolate; the VM's VIF is
 * changed in place through the API; a VM's one VIF cannot be deleted or added to; a new document
 * without the VM removes it and closes its socket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon } from '../../src/daemon/daemon.js';
import { native, nativeAvailable } from '../../src/native/index.js';
import { Frontend, frame } from '../helpers/vhost-frontend.js';
import { http, tmp, TRAFFIC } from '../helpers/daemon.js';
import { until } from '../helpers/until.js';

const MAC_A = '02:00:00:07:05:0a';
const MAC_VM = '52:54:00:07:05:01';

test('a VM guest (vms:) in the daemon: its socket serves a vhost-user front-end; frames both ways; API changes', { timeout: 120_000 }, async (t) => {
  if (!nativeAvailable()) {
    const msg = 'SKIPPED daemon VM guest: native addon not built (npm ci)';
    if (process.env.CI === 'true') throw new Error(`${msg} (CI=true: a skip is a failure)`);
    t.skip(msg);
    return;
  }
  const dir = tmp('sv7-vm-');
  const cfg = join(dir, 'svnic.yaml');
  const doc = {
    device: { name: 'dev0', uplink: 'null', sweepMs: 20 },
    guests: [{ name: 'a', module: TRAFFIC, args: { pps: 50 }, vifs: [{ name: 'a0', mac: MAC_A }] }],
    vms: [{ name: 'vm1', socket: 'vm1.sock', vif: { mac: MAC_VM } }],
  };
  writeFileSync(cfg, JSON.stringify(doc));
  const d = await startDaemon({ config: cfg, socket: join(dir, 'api.sock'), listen: { host: '127.0.0.1', port: 0 }, persist: false, log: () => {} });
  const auth = { authorization: `Bearer ${readFileSync(d.tokenFile!, 'utf8').trim()}` };
  let fe: Frontend | null = null;
  try {
    const guests = (await http(d.url!, 'GET', '/v1/guests')).body as unknown as Record<string, any>[];
    const vm = guests.find((g) => g.name === 'vm1')!;
    assert.deepEqual([vm.kind, vm.state, vm.socket, vm.connected, vm.vifs], ['vm', 'running', join(dir, 'vm1.sock'), false, ['vm1-eth0']]);
    assert.equal(guests.find((g) => g.name === 'a')!.kind, 'isolate');

    fe = new Frontend(join(dir, 'vm1.sock'));
    await fe.handshake72();
    fe.postRx(32);
    await until(async () => ((await http(d.url!, 'GET', '/v1/guests')).body as unknown as Record<string, any>[]).find((g) => g.name === 'vm1')!.connected === true, 'the VM shows as connected');
    // isolate -> VM: a's broadcasts arrive in the VM's receive queue
    const got: Uint8Array[] = [];
    await until(() => {
      got.push(...fe!.received());
      return got.some((f) => [...f.subarray(6, 12)].map((x) => x.toString(16).padStart(2, '0')).join(':') === MAC_A);
    }, 'a frame from a0 reaches the VM');
    // VM -> isolate: a unicast frame to a0
    const rx0 = d.ctl.runtime.vifs.get('a0')!.vif.counters().rx_frames;
    fe.transmit(0, frame(MAC_A, MAC_VM, 0x75));
    await until(() => d.ctl.runtime.vifs.get('a0')!.vif.counters().rx_frames > rx0, 'the VM\'s frame reaches a0');
    assert.ok(d.ctl.runtime.vifs.get('vm1-eth0')!.vif.counters().tx_frames >= 1);

    // the VM's VIF changes in place (same VIF); it cannot be deleted alone, nor can the VM get a second one
    const vifBefore = d.ctl.runtime.vifs.get('vm1-eth0')!.vif;
    const p = await http(d.url!, 'PATCH', '/v1/vifs/vm1-eth0', { linkUp: false }, auth);
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.deepEqual(p.body.summary, ['vif vm1-eth0 changed (linkUp true -> false)']);
    assert.equal(d.ctl.runtime.vifs.get('vm1-eth0')!.vif, vifBefore);
    const del = await http(d.url!, 'DELETE', '/v1/vifs/vm1-eth0', undefined, auth);
    assert.deepEqual([del.status, del.body.code], [409, 'VM_HAS_ONE_VIF']);
    const add = await http(d.url!, 'POST', '/v1/vifs', { guest: 'vm1' }, auth);
    assert.deepEqual([add.status, add.body.code], [409, 'VM_HAS_ONE_VIF']);
    assert.equal(d.ctl.runtime.vifs.get('vm1-eth0')!.vif, vifBefore, 'untouched by the refused calls');
    // the desired document keeps the VM's VIF name and MAC pinned
    const shown = (await http(d.url!, 'GET', '/v1/config')).body.config as any;
    assert.deepEqual([shown.vms[0].vif.name, shown.vms[0].vif.mac, shown.vms[0].vif.linkUp], ['vm1-eth0', MAC_VM, false]);

    // a document without the VM: the VM guest goes, its VIF is removed and its socket closed
    const { vms: _vms, ...withoutVm } = doc;
    const put = await http(d.url!, 'PUT', '/v1/config', withoutVm, auth);
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(put.body.summary, ['guest vm1 removed', 'vif vm1-eth0 removed']);
    assert.equal(vifBefore.state, 'destroyed');
    assert.deepEqual(d.ctl.runtime.devices.get('dev0')!.device.vifs().map((v) => v.id), ['a0']);
    assert.throws(() => native().unixConnect(join(dir, 'vm1.sock')), (e: NodeJS.ErrnoException) => e.code === 'ENOENT' || e.code === 'ECONNREFUSED');
  } finally {
    fe?.close();
    await d.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
