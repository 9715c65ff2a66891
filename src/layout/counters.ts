/**
 * Counters in shared memory, written by engines (one writer per row) and read by the control plane
 * without messaging an engine. Values are float64 (exact to 2^53) so an engine adds with a plain
 * store; on x86-64 an aligned 8-byte store is not torn.
 *
 * ```
 *  counters SharedArrayBuffer (device-owned; never granted to a guest)
 *  0 +---------------------------------------------+
 *    | VIF row 0: VIF_COUNTERS.length x f64        |
 *    | VIF row 1 ...            (maxVifs rows)     |
 *    +---------------------------------------------+ engineRowsOffset
 *    | engine row 0: ENGINE_COUNTERS.length x f64  |
 *    | ...                      (engines rows)     |
 *    +---------------------------------------------+
 * ```
 * A VIF row is reset to zero when its slot is given to a new VIF.
 */

/** Per-VIF counters. Names ending in a drop reason are drops; see DROP_COUNTERS. */
export const VIF_COUNTERS = [
  'tx_frames', 'tx_bytes', 'rx_frames', 'rx_bytes',
  // guest TX drops: frame completed with length 0, dropped, counted (error tier 1)
  'tx_spoofed_mac', 'tx_bad_header', 'tx_runt', 'tx_oversize', 'tx_bad_addr', 'tx_bad_desc',
  'tx_link_down', 'tx_to_self', 'tx_unplugged',
  // a segmentation-offload (GSO) frame whose destination cannot take one (VM VIFs with offloads)
  'tx_gso_undeliverable',
  // GSO frames the engine segmented in software (not a drop: their segments count in tx_frames)
  'tx_gso_segmented_frames',
  // guest RX drops: frame for this VIF that could not be placed in its receive queue
  'rx_no_buffer', 'rx_buffer_too_small', 'rx_bad_addr', 'rx_bad_desc', 'rx_link_down', 'rx_oversize',
  'rx_not_ready',
  // protocol violations: the VIF went to NEEDS_RESET (error tier 2)
  'proto_avail_jump', 'proto_bad_desc_index', 'proto_desc_loop', 'proto_indirect', 'proto_bad_features',
  // notifications
  'kicks', 'irq_raised', 'irq_coalesced', 'resets',
  // QoS (device/qos/): guest RX drops (hold queue full; frames still held when the VIF went away)
  // and, not drops, how often guest TX was held by its limit and frames that waited for guest RX
  'rx_qos_overflow', 'rx_qos_flushed', 'qos_tx_holds', 'qos_rx_queued',
] as const;
export type VifCounter = (typeof VIF_COUNTERS)[number];

/** Per-engine counters, device-wide events that belong to no single VIF. */
export const ENGINE_COUNTERS = [
  'loops', 'sleeps', 'wakeups', 'sweeps', 'busy_ns', 'idle_ns', 'spurious_doorbells',
  'uplink_tx_frames', 'uplink_tx_bytes', 'uplink_rx_frames', 'uplink_rx_bytes',
  'fwd_out_frames', 'fwd_in_frames',
  // frame copies made by flooding beyond the first (one frame in, N out => N - 1)
  'flood_copies',
  // device-level drops
  'uplink_rx_runt', 'uplink_rx_oversize', 'uplink_rx_unknown_dst', 'no_receiver', 'fwd_full',
  'vif_gone', 'uplink_tx_full',
  // iterations in which guests' transmit queues were left waiting because the uplink ring was full
  'uplink_tx_waits',
] as const;
export type EngineCounter = (typeof ENGINE_COUNTERS)[number];

export const VIF_DROP_COUNTERS: readonly VifCounter[] = VIF_COUNTERS.filter(
  (n) => (n.startsWith('tx_') || n.startsWith('rx_')) && !/_(frames|bytes)$/.test(n),
);
export const ENGINE_DROP_COUNTERS: readonly EngineCounter[] = [
  'uplink_rx_runt', 'uplink_rx_oversize', 'uplink_rx_unknown_dst', 'no_receiver', 'fwd_full', 'vif_gone',
  'uplink_tx_full',
];
/** Device drops of frames that had entered the switch (runts and oversize from the uplink never did). */
export const SWITCH_DROP_COUNTERS: readonly EngineCounter[] = ENGINE_DROP_COUNTERS.filter(
  (k) => k !== 'uplink_rx_runt' && k !== 'uplink_rx_oversize',
);

export const VC = Object.fromEntries(VIF_COUNTERS.map((n, i) => [n, i])) as { [K in VifCounter]: number };
export const EC = Object.fromEntries(ENGINE_COUNTERS.map((n, i) => [n, i])) as { [K in EngineCounter]: number };

export const VIF_ROW = VIF_COUNTERS.length;
export const ENGINE_ROW = ENGINE_COUNTERS.length;

export function createCounters(maxVifs: number, engines: number): SharedArrayBuffer {
  return new SharedArrayBuffer(8 * (maxVifs * VIF_ROW + engines * ENGINE_ROW));
}

export const vifRowOffset = (slot: number): number => slot * VIF_ROW;
export const engineRowOffset = (maxVifs: number, engine: number): number => maxVifs * VIF_ROW + engine * ENGINE_ROW;

export function readVifCounters(f64: Float64Array, slot: number): Record<VifCounter, number> {
  const base = vifRowOffset(slot);
  const out = {} as Record<VifCounter, number>;
  VIF_COUNTERS.forEach((n, i) => (out[n] = f64[base + i]!));
  return out;
}

export function readEngineCounters(f64: Float64Array, maxVifs: number, engine: number): Record<EngineCounter, number> {
  const base = engineRowOffset(maxVifs, engine);
  const out = {} as Record<EngineCounter, number>;
  ENGINE_COUNTERS.forEach((n, i) => (out[n] = f64[base + i]!));
  return out;
}

/**
 * The switch's conservation law (device/switch.ts) over a whole counter block, for a quiet device:
 * frames in (guest tx_frames, uplink_rx_frames, fwd_in_frames) + flood_copies - outcomes (guest
 * rx_frames and receive drops, uplink_tx_frames, fwd_out_frames, device drops). 0 = nothing lost.
 */
export function unaccountedFrames(f64: Float64Array, maxVifs: number, engines: number): number {
  let balance = 0;
  for (let e = 0; e < engines; e++) {
    const d = readEngineCounters(f64, maxVifs, e);
    balance += d.uplink_rx_frames + d.fwd_in_frames + d.flood_copies - d.uplink_tx_frames - d.fwd_out_frames;
    for (const k of SWITCH_DROP_COUNTERS) balance -= d[k];
  }
  for (let s = 0; s < maxVifs; s++) balance += vifBalance(readVifCounters(f64, s));
  return balance;
}

/** One VIF's share of the conservation law: frames it put into the switch minus frames it took out. */
export function vifBalance(c: Record<VifCounter, number>): number {
  let b = c.tx_frames - c.rx_frames;
  for (const k of VIF_DROP_COUNTERS) if (k.startsWith('rx_')) b -= c[k];
  return b;
}
