/**
 * Shared memory of the driver-domain baseline (src/baseline/): what each netif's guest is granted,
 * the driver domain's event-channel page, and its counters.
 *
 * ```
 *  netif memory (one SharedArrayBuffer per guest netif, granted to that guest)
 *    exactly a VIF's layout (layout/vif.ts): header page, receiveq, transmitq, buffers.
 *    The guest runs the unchanged VirtioNetDriver on it; netback serves the queues.
 *    DOORBELL_BIT = the netif's slot in the driver domain's event-channel page.
 *
 *  event-channel page (one per driver domain; a wake page, layout/doorbell.ts)
 *    BITMAP bit s: netif slot s kicked (guest -> driver domain event channel)
 *    WAKE: woken by guest kicks and by the driver domain's NIC interrupt (the NIC VIF is
 *          created with interruptWake = this page), so the driver domain sleeps on one word.
 *    Mapped into every guest with a netif, like the engine's doorbell page on the direct path.
 *
 *  control page (private wake page): CONTROL = the control plane posted a message.
 *
 *  counters (Float64Array, written only by the driver-domain worker)
 *  0 +-----------------------------------------------------------+
 *    | netif rows: maxNetifs x VIF_COUNTERS (layout/counters.ts) |  same names as a VIF's
 *    +-----------------------------------------------------------+ engineRowOffset(maxNetifs, 0)
 *    | driver-domain row: ENGINE_COUNTERS; "uplink" = its NIC     |
 *    +-----------------------------------------------------------+ bridgeRowOffset(maxNetifs)
 *    | bridge row: BRIDGE_COUNTERS                                |
 *    +-----------------------------------------------------------+
 * ```
 * Because netif rows and the driver-domain row have the device's counter names, the device's
 * conservation law (layout/counters.ts unaccountedFrames) holds for the bridge unchanged: frames
 * in (netif tx_frames, NIC uplink_rx_frames) + flood_copies = netif rx_frames + receive drops +
 * uplink_tx_frames (to the NIC) + the driver domain's drops.
 */
import { createCounters, engineRowOffset, ENGINE_ROW, VIF_ROW } from './counters.js';

export const BRIDGE_COUNTERS = [
  // forwarding database (IEEE 802.1D learning and ageing)
  'fdb_learned', 'fdb_moved', 'fdb_aged', 'fdb_full', 'fdb_static_conflict',
  // frames the bridge flooded because the destination was unknown (not broadcast/multicast)
  'flood_unknown',
  // frames from the NIC with a group (multicast) source address: dropped (802.1D 7.8)
  'bad_source',
  // iterations that found the NIC's transmit ring full and left guest frames queued
  'nic_tx_full_waits',
] as const;
export type BridgeCounter = (typeof BRIDGE_COUNTERS)[number];
export const BC = Object.fromEntries(BRIDGE_COUNTERS.map((n, i) => [n, i])) as { [K in BridgeCounter]: number };

export const bridgeRowOffset = (maxNetifs: number): number => engineRowOffset(maxNetifs, 0) + ENGINE_ROW;

export function createDriverDomainCounters(maxNetifs: number): SharedArrayBuffer {
  const base = createCounters(maxNetifs, 1).byteLength;
  return new SharedArrayBuffer(base + 8 * BRIDGE_COUNTERS.length);
}

export function readBridgeCounters(f64: Float64Array, maxNetifs: number): Record<BridgeCounter, number> {
  const base = bridgeRowOffset(maxNetifs);
  const out = {} as Record<BridgeCounter, number>;
  BRIDGE_COUNTERS.forEach((n, i) => (out[n] = f64[base + i]!));
  return out;
}

/** Bytes of the netif rows (for sizing checks). */
export const netifRowsBytes = (maxNetifs: number): number => 8 * maxNetifs * VIF_ROW;
