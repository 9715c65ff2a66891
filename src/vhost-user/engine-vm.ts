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
import { VifState, type EngineVif } from '../device/engine-vif.js';

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

/**
 * Engine.vmStart: serve a VM VIF from the VM's rings in its mapped RAM (the session checked
 * addresses). Throws RangeError if the rings lie outside the VM's memory; the engine then kicks it.
 */
export function vmAttach(v: EngineVif, r: VmRings, counters: Float64Array): void {
  v.vmCallFds = r.callFds;
  v.dev = vmDevice(r, v.mtu, v.linkUp, counters, v.counterBase); // throws RangeError if rings are outside memory
  v.state = VifState.LIVE;
  v.batchFrames = 0;
  v.heldFrames = 0;
  v.irqHeld = false;
}

/**
 * Engine.vmStop: stop using a VM VIF's rings. Returns last_avail of ring 0 (toGuest) and ring 1
 * (fromGuest), or null if it had no device (then the engine's lists need no change).
 */
export function vmDetach(v: EngineVif): [number, number] | null {
  // The session closes the call fds after this returns: never write to them again.
  if (v.vmCallFds !== null) v.vmCallFds = [-1, -1];
  v.irqHeld = false;
  v.irqQueues = 0;
  const dev = v.dev;
  if (dev === null) return null;
  dev.fromGuestQ.publishUsed();
  dev.toGuestQ.publishUsed();
  v.dev = null;
  if (v.state === VifState.LIVE) v.state = VifState.WAITING;
  return [dev.toGuestQ.lastAvail, dev.fromGuestQ.lastAvail];
}
