/**
 * The driver domain's physical NIC: one ordinary VIF on the svnic device, used non-virtualized the
 * way the paper's dom0 used the IXP board as a plain NIC. The driver domain drives it with the same
 * VirtioNetDriver a guest uses; this class only adds what a bridge needs on top:
 *
 *  - Transmit buffers as netback's copy target. Netback copies a guest's frame (header + frame)
 *    across the domain boundary straight into a reserved NIC transmit buffer, which is driver-domain
 *    memory (Xen's grant copy into a dom0 skb); the bridge decides on that private copy and, if the
 *    frame goes out, commits the buffer as is. So a frame to the wire is copied once by netback,
 *    then once by the device engine, as in Xen (grant copy, then the NIC's DMA).
 *  - One buffer is reserved at a time and kept until it is committed: a frame that stays inside
 *    the driver domain (guest to guest) or is dropped leaves the buffer for the next frame.
 *  - Per-buffer views built once (ARCHITECTURE.md rule 5), since VirtioNetDevice.fromGuest() writes
 *    at index 0 of the view it is given.
 */
import { VirtioNetDriver, type VifGrant } from '../guest/driver.js';
import { NET_HDR_BYTES } from '../virtio/constants.js';

export class DomNic {
  readonly drv: VirtioNetDriver;
  /** The whole NIC VIF memory (receive frames are read here in place). */
  readonly bytes: Uint8Array;
  readonly words: Int32Array;
  private readonly view8: Uint8Array[] = [];
  private readonly view32: Int32Array[] = [];
  private readonly frameAt: Int32Array;
  /** The reserved transmit buffer, or -1. */
  held = -1;

  constructor(grant: VifGrant) {
    this.drv = new VirtioNetDriver(grant);
    this.bytes = this.drv.bytes;
    this.words = new Int32Array(grant.vif);
    const q = this.drv.layout.queueSize;
    const size = this.drv.layout.bufferBytes;
    this.frameAt = new Int32Array(q);
    for (let s = 0; s < q; s++) {
      const start = this.drv.txOffset(s) - NET_HDR_BYTES; // 64 B aligned (driver layout)
      this.view8.push(new Uint8Array(grant.vif, start, size));
      this.view32.push(new Int32Array(grant.vif, start, size >>> 2));
      this.frameAt[s] = start + NET_HDR_BYTES;
    }
  }

  /** A transmit buffer to copy the next guest frame into (the held one), or -1 if the ring is full. */
  reserve(): number {
    if (this.held < 0) this.held = this.drv.reserveTx();
    return this.held;
  }

  /** View of buffer `slot` from its start (virtio header at 0, frame at NET_HDR_BYTES). */
  view(slot: number): Uint8Array {
    return this.view8[slot]!;
  }
  view32Of(slot: number): Int32Array {
    return this.view32[slot]!;
  }
  /** Offset in `bytes` of the frame in transmit buffer `slot`. */
  frameOffset(slot: number): number {
    return this.frameAt[slot]!;
  }

  /** Send the held buffer's frame of `len` bytes (visible to the device after flush()). */
  commit(len: number): void {
    this.drv.commitTx(this.held, len);
    this.held = -1;
  }

  flush(): void {
    this.drv.flush();
  }

  get maxFrame(): number {
    return this.drv.maxFrame;
  }

  /**
   * Before sleeping: ask the device for an interrupt at the next received frame (EVENT_IDX
   * used_event, virtio 1.2, 2.7.10) and report whether frames are already there.
   */
  armRx(): boolean {
    this.drv.waitSync(0); // arms the receive queue and returns at once
    return this.drv.pollRx();
  }
}
