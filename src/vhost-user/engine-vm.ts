/**
 * Engine side of a VM's VIF (runs in the engine worker): build the ordinary VirtioNetDevice over
 * the VM's mapped RAM, and raise the VM's interrupts by writing its call eventfds (vhost-user.rst:
 * the back-end signals a ring's call fd when the driver should look at the used ring; QEMU turns
 * that into the guest's interrupt). EVENT_IDX suppression is decided by the shared device code.
 */
import { VhostGuestMemory } from './memory-table.js';
import { VirtioNetDevice } from '../device/virtio-net-device.js';
import type { VmRings } from './session.js';
import { native } from '../native/index.js';

export function vmDevice(r: VmRings, mtu: number, linkUp: boolean, counters: Float64Array, counterBase: number): VirtioNetDevice {
  const mem = new VhostGuestMemory(r.regions.map((x) => ({ ...x, uva: 0, mmapOffset: 0 })));
  const dev = new VirtioNetDevice(mem, r.toGuest, r.fromGuest, r.eventIdx, { mtu, linkUp }, counters, counterBase, r.mrgRxbuf);
  dev.offloads = r.offloads;
  // Resume where the front-end says the driver is (SET_VRING_BASE) and from the used idx the ring holds.
  dev.toGuestQ.resume(r.toGuest.base);
  dev.fromGuestQ.resume(r.fromGuest.base);
  return dev;
}

/** Interrupt for the rings in `mask` (bit 0 ring 0, bit 1 ring 1); 0 = both (config change). */
export function vmSignal(callFds: [number, number], mask: number): void {
  const m = mask === 0 ? 3 : mask;
  const n = native();
  if ((m & 1) !== 0 && callFds[0] >= 0) n.eventfdWrite(callFds[0], 1);
  if ((m & 2) !== 0 && callFds[1] >= 0) n.eventfdWrite(callFds[1], 1);
}
