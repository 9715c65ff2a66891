/**
 * Real Linux VMs (QEMU/TCG, their own virtio_net driver) on svnic VIFs over vhost-user:
 *  1. two VMs ping each other and run iperf3 (TCP) both ways;
 *  3. a QEMU killed mid-traffic: its VIF waits for reconnect, the other VMs' traffic continues,
 *     and a new QEMU on the same socket gets through.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Device } from '../../src/hypervisor/device.js';
import { KickRelay } from '../../src/vhost-user/kick-relay.js';
import { VhostUserPort } from '../../src/vhost-user/port.js';
import { Vm, iperfReceiverMbits, pingRtts, type VmOptions } from '../../src/vm/qemu.js';
import { vmImageOrSkip } from '../helpers/vm-env.js';
import { until } from '../helpers/until.js';

const LIMIT = { timeout: 180_000 }; // a hang fails the test; not a timing check
const retry = (c: string) => `for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do ${c} && break; sleep 1; done`;
/** Until `ip` answers (the peer may still be booting; an unanswered ARP gives up after 3 s), then 3 pings. */
const pingWhenUp = (ip: string) => `i=0; until ping -c 1 -W 1 ${ip} > /dev/null; do i=$((i+1)); [ $i -ge 60 ] && exit 1; done; ping -c 3 ${ip}`;

/** VM i uses client mode when `clientModes` has i: QEMU listens (server=on), svnic connects. */
/** `offloads`: true for all VMs, or the VM numbers (1-based) that offer checksum/TSO. */
async function rig(n: number, clientModes: number[] = [], offloads: boolean | number[] = false) {
  const device = await Device.create({ engines: 1 });
  const relay = new KickRelay();
  const ports: VhostUserPort[] = [];
  for (let i = 1; i <= n; i++) {
    const vif = await device.createVif({ name: `vm${i}`, mac: `52:54:00:05:00:0${i}` });
    const mode = clientModes.includes(i) ? 'client' : 'server';
    ports.push(new VhostUserPort(device, vif, relay, { socket: join(tmpdir(), `sv5-${process.pid}-${i}.sock`), mode,
      offloads: offloads === true || (Array.isArray(offloads) && offloads.includes(i)) }));
  }
  const vms: Vm[] = [];
  return {
    device, ports, vms,
    boot(i: number, image: VmOptions['image'], cmd: string): Vm {
      const p = ports[i - 1]!;
      const net = { kind: 'vhost-user' as const, socket: p.socket, server: p.mode === 'client' };
      const vm = new Vm({ name: `sv5-${i}`, image, mac: p.vif.mac, ip: `10.5.0.${i}/24`, cmd, net });
      vms.push(vm);
      return vm;
    },
    async close() {
      for (const vm of vms) vm.kill();
      await Promise.all(vms.map((v) => v.done.catch(() => {})));
      for (const p of ports) await p.close();
      await relay.stop();
      await device.stop();
    },
  };
}

test('two VMs ping each other and run iperf3 both ways through svnic (VM a in client mode: QEMU listens)', LIMIT, async (t) => {
  const image = vmImageOrSkip(t);
  if (!image) return;
  const r = await rig(2, [1]);
  try {
    const a = r.boot(1, image, `${pingWhenUp('10.5.0.2')} && iperf3 -s -1 && iperf3 -s -1`);
    const b = r.boot(2, image, `${pingWhenUp('10.5.0.1')} && sleep 1 && ${retry('iperf3 -c 10.5.0.1 -t 3')} && sleep 1 && ${retry('iperf3 -c 10.5.0.1 -t 3 -R')}`);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(rb.rc, 0, `VM b failed:\n${rb.console}`);
    assert.equal(ra.rc, 0, `VM a failed:\n${ra.console}`);
    assert.equal(pingRtts(ra.output).length, 3, ra.output);
    assert.equal(pingRtts(rb.output).length, 3, rb.output);
    const rates = iperfReceiverMbits(rb.output);
    assert.equal(rates.length, 2, `two iperf3 runs (b->a, a->b):\n${rb.output}`);
    for (const mbit of rates) assert.ok(mbit > 0, rb.output);
    const [ca, cb] = r.ports.map((p) => p.vif.counters());
    // Both VIFs carried traffic each way, through the engine, with interrupts to the guests.
    for (const c of [ca!, cb!]) {
      assert.ok(c.tx_frames > 1000 && c.rx_frames > 1000, JSON.stringify(c));
      assert.ok(c.irq_raised > 0 && c.kicks > 0);
      assert.equal(c.tx_spoofed_mac + c.tx_bad_addr + c.rx_bad_addr + c.proto_bad_desc_index + c.proto_desc_loop + c.proto_avail_jump, 0);
    }
    for (const p of r.ports) assert.equal(p.counters.bad_size + p.counters.bad_fds + p.counters.unknown_request + p.counters.bad_address, 0, JSON.stringify(p.counters));
  } finally {
    await r.close();
  }
});

test('killing a QEMU mid-traffic: its VIF waits for reconnect, the other VMs carry on', LIMIT, async (t) => {
  const image = vmImageOrSkip(t);
  if (!image) return;
  const r = await rig(3);
  try {
    const a = r.boot(1, image, 'iperf3 -s -1');
    const b = r.boot(2, image, `${pingWhenUp('10.5.0.1')} && ${retry('iperf3 -c 10.5.0.1 -t 4')}`);
    const c = r.boot(3, image, 'ping -i 0.05 10.5.0.1');
    const victim = r.ports[2]!;
    // Kill VM c while b's iperf3 runs and c is pinging a.
    await until(() => b.console.includes('connected to') && victim.vif.counters().rx_frames > 5, 'b streaming and c pinging', 120_000);
    c.kill('SIGKILL');
    await c.done;
    await until(() => !victim.connected, 'svnic saw QEMU c go away');
    assert.equal(victim.running, false);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(rb.rc, 0, `VM b failed after c was killed:\n${rb.console}`);
    assert.equal(ra.rc, 0, ra.console);
    assert.equal(iperfReceiverMbits(rb.output).length, 1, rb.output);
    // The VIF is still there, waiting: a new QEMU on the same socket gets through (to a fresh VM a).
    await until(() => !r.ports[0]!.connected, 'svnic saw QEMU a power off');
    const a2 = r.boot(1, image, 'sleep 60');
    await a2.ready();
    const c2 = r.boot(3, image, pingWhenUp('10.5.0.1'));
    const rc2 = await c2.done;
    a2.kill();
    assert.equal(rc2.rc, 0, `reconnected VM could not ping:\n${rc2.console}`);
    assert.equal(victim.counters.connections, 2);
    assert.ok(victim.counters.disconnects >= 1);
    assert.equal(r.device.vifs().length, 3);
  } finally {
    await r.close();
  }
});

test('with offloads, TCP segments pass between two VMs as GSO frames (larger than the MTU)', LIMIT, async (t) => {
  const image = vmImageOrSkip(t);
  if (!image) return;
  const r = await rig(2, [], true);
  try {
    const a = r.boot(1, image, 'iperf3 -s -1');
    const b = r.boot(2, image, `${pingWhenUp('10.5.0.1')} && ${retry('iperf3 -c 10.5.0.1 -t 3')}`);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(rb.rc, 0, rb.console);
    assert.equal(ra.rc, 0, ra.console);
    assert.ok((iperfReceiverMbits(rb.output)[0] ?? 0) > 0, rb.output);
    const ca = r.ports[0]!.vif.counters();
    const cb = r.ports[1]!.vif.counters();
    // Frames into VM a averaged more than a 1514-byte Ethernet frame: GSO passed through whole.
    assert.ok(ca.rx_bytes / ca.rx_frames > 1514, JSON.stringify(ca));
    assert.equal(cb.tx_gso_undeliverable + cb.tx_bad_header + ca.rx_oversize, 0, JSON.stringify(cb));
  } finally {
    await r.close();
  }
});

test('a VM with offloads sends TCP to a VM without: the engine segments the GSO frames in software', LIMIT, async (t) => {
  const image = vmImageOrSkip(t);
  if (!image) return;
  const r = await rig(2, [], [2]); // only VM b (the iperf3 client) offers TSO
  try {
    const a = r.boot(1, image, 'iperf3 -s -1');
    const b = r.boot(2, image, `${pingWhenUp('10.5.0.1')} && ${retry('iperf3 -c 10.5.0.1 -t 3')}`);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(rb.rc, 0, rb.console);
    assert.equal(ra.rc, 0, ra.console);
    assert.ok((iperfReceiverMbits(rb.output)[0] ?? 0) > 0, rb.output);
    const ca = r.ports[0]!.vif.counters();
    const cb = r.ports[1]!.vif.counters();
    // b sent GSO frames, the engine cut them, a received only MTU-sized frames, nothing refused.
    assert.ok(cb.tx_gso_segmented_frames > 0, JSON.stringify(cb));
    assert.ok(ca.rx_bytes / ca.rx_frames <= 1514, JSON.stringify(ca));
    assert.equal(cb.tx_gso_undeliverable + cb.tx_bad_header + ca.rx_oversize, 0, JSON.stringify(cb));
    assert.ok(ca.rx_frames > 1000, JSON.stringify(ca));
  } finally {
    await r.close();
  }
});
