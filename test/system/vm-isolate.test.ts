/**
 * 2. A real Linux VM (vhost-user VIF) and an isolate guest (worker thread, svnic's own driver)
 * on the same device reach each other: the VM pings the isolate and exchanges UDP with it. The
 * isolate runs the built-in `svnic:echo` program (guest/net: ARP, ICMP echo, UDP echo), here on
 * port 53 because the VM's busybox sends UDP with nslookup.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hypervisor } from '../../src/hypervisor/hypervisor.js';
import { KickRelay } from '../../src/vhost-user/kick-relay.js';
import { VhostUserPort } from '../../src/vhost-user/port.js';
import { Vm, pingRtts } from '../../src/vm/qemu.js';
import { vmImageOrSkip } from '../helpers/vm-env.js';
import { builtinModule } from '../../src/config/load.js';
import type { NetStats } from '../../src/guest/net/stats.js';

const LIMIT = { timeout: 120_000 };

for (const offloads of [false, true]) test(`a VM${offloads ? ' with checksum/TSO offloads' : ''} and an isolate guest on one device: ping and UDP both ways`, LIMIT, async (t) => {
  const image = vmImageOrSkip(t);
  if (!image) return;
  const hv = new Hypervisor();
  const relay = new KickRelay();
  let port: VhostUserPort | null = null;
  // (one test per setting; sockets differ by setting so a slow teardown never collides)
  let vm: Vm | null = null;
  try {
    const dev = await hv.createDevice({ engines: 1 });
    const g = await hv.startGuest({ name: 'echo', module: builtinModule('svnic:echo')!, args: { ip: '10.5.0.9/24', port: 53 } });
    await hv.createVifFor(g, dev, { mac: '52:54:00:05:00:09' });
    const vmVif = await dev.createVif({ name: 'vm', mac: '52:54:00:05:00:01' });
    port = new VhostUserPort(dev, vmVif, relay, { socket: join(tmpdir(), `sv5-iso-${process.pid}-${offloads ? 1 : 0}.sock`), offloads });
    vm = new Vm({
      name: 'sv5-iso', image, mac: vmVif.mac, ip: '10.5.0.1/24', net: { kind: 'vhost-user', socket: port.socket },
      // busybox nc has no UDP mode: nslookup sends UDP queries to port 53 and the isolate echoes
      // them; /proc/net/snmp shows the VM kernel delivered the echoed datagrams to the socket.
      cmd: 'i=0; until ping -c 1 -W 1 10.5.0.9 > /dev/null; do i=$((i+1)); [ $i -ge 60 ] && exit 1; done; ping -c 3 10.5.0.9 && (timeout 5 nslookup svnic.test 10.5.0.9; true) && grep Udp: /proc/net/snmp',
    });
    const r = await vm.done;
    assert.equal(r.rc, 0, r.console);
    assert.equal(pingRtts(r.output).length, 3, r.output); // the 3 after the first answer
    const udp = r.output.split('\n').filter((l) => l.startsWith('Udp:'));
    assert.equal(udp.length, 2, r.output);
    const names = udp[0]!.split(/\s+/);
    const values = udp[1]!.split(/\s+/).map(Number);
    const inDatagrams = values[names.indexOf('InDatagrams')]!;
    const outDatagrams = values[names.indexOf('OutDatagrams')]!;
    assert.ok(outDatagrams >= 1 && inDatagrams >= 1, `VM sent and received UDP through svnic: ${udp.join(' | ')}`);
    g.send({ stats: true, tag: 'final' });
    const { stats } = await g.report<{ tag?: string; stats: NetStats }>((r) => r.tag === 'final');
    assert.ok(stats.arp_in >= 1 && stats.icmp_echo_answered >= 3 && stats.udp_delivered >= 1, JSON.stringify(stats));
    // With offloads the VM leaves UDP checksums to the device: the engine completed them, and the
    // echo guest's stack verifies every UDP checksum it receives.
    assert.equal(stats.udp_bad_checksum, 0, JSON.stringify(stats));
    const c = vmVif.counters();
    assert.ok(c.tx_frames >= 6 && c.rx_frames >= 6, JSON.stringify(c));
    g.send('exit');
  } finally {
    vm?.kill();
    await vm?.done.catch(() => {});
    await port?.close();
    await relay.stop();
    await hv.stop();
  }
});
