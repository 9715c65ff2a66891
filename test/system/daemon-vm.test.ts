/**
 * System test: svnicd runs a real VM (issue 5: `vms:` with `boot`, QEMU/TCG and Linux's own
 * virtio_net driver over vhost-user) next to an isolate `svnic:echo` guest. The VM pings the echo
 * guest and powers off; the daemon then shows the VM guest as done with its exit code, has
 * reclaimed its VIF (socket closed, VIF removed), and a dry-run reload would start it again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon } from '../../src/daemon/daemon.js';
import { Client } from '../../src/cli/client.js';
import { tmp } from '../helpers/daemon.js';
import { until } from '../helpers/until.js';
import { vmImageOrSkip } from '../helpers/vm-env.js';

test('svnicd with a booted VM guest: it pings an isolate guest, powers off, its VIF is reclaimed', { timeout: 180_000 }, async (t) => {
  if (!vmImageOrSkip(t)) return;
  const dir = tmp('sv7-vmsys-');
  const cfg = join(dir, 'svnic.yaml');
  writeFileSync(cfg, [
    'device: { name: dev0 }',
    'guests:',
    '  - { name: echo, module: "svnic:echo", args: { ip: 10.77.5.2/24 }, vifs: [ { name: echo-eth0, mac: "02:00:00:07:05:02" } ] }',
    'vms:',
    '  - name: vm1',
    '    socket: vm1.sock',
    '    vif: { mac: "52:54:00:07:05:01" }',
    '    boot: { ip: 10.77.5.1/24, cmd: "i=0; until ping -c 1 -W 1 10.77.5.2 > /dev/null; do i=$((i+1)); [ $i -ge 60 ] && exit 1; done; ping -c 3 10.77.5.2" }',
    '',
  ].join('\n'));
  const d = await startDaemon({ config: cfg, socket: join(dir, 'api.sock'), persist: false, log: () => {} });
  try {
    const c = new Client({ socket: d.socket });
    type G = { name: string; kind: string; state: string; result?: { rc: number; output: string }; vifs: string[] };
    const vmOf = async () => (await c.call<G[]>('GET', '/v1/guests')).find((g) => g.name === 'vm1')!;
    const first = await vmOf();
    assert.deepEqual([first.kind, first.vifs], ['vm', ['vm1-eth0']]);
    // the VM boots, pings the echo guest 1 + 3 times (or gives up after 60 tries: rc 1) and powers off
    await until(async () => (await vmOf()).state !== 'running', 'the VM powered off', 150_000);
    const done = await vmOf();
    assert.equal(done.state, 'done', JSON.stringify(done));
    assert.equal(done.result!.rc, 0, done.result!.output);
    assert.match(done.result!.output, /3 packets transmitted, 3 (packets )?received/);
    assert.deepEqual(done.vifs, [], 'its VIF was reclaimed');
    assert.deepEqual(d.ctl.runtime.devices.get('dev0')!.device.vifs().map((v) => v.id), ['echo-eth0']);
    assert.ok(d.ctl.runtime.vifs.get('echo-eth0')!.vif.counters().rx_frames >= 4, 'the echo guest got the pings');
    // like an isolate whose worker exited, the next change would start it again
    const plan = await c.call<{ summary: string[] }>('POST', '/v1/reload?dryRun=true');
    assert.deepEqual(plan.summary, ['guest vm1 added', 'vif vm1-eth0 added']);
  } finally {
    await d.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
