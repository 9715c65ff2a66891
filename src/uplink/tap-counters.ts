/** Counters of a TAP uplink, in layout order (layout/uplink-counters.ts). */
export const TAP_COUNTERS = [
  'tx_frames', 'tx_bytes', 'tx_wrong_segment', 'tx_again', 'tx_errors',
  'rx_frames', 'rx_bytes', 'rx_runt', 'rx_oversize', 'rx_ring_full', 'rx_errors',
] as const;
export const TAP_DROP_COUNTERS = ['tx_wrong_segment', 'tx_again', 'tx_errors', 'rx_runt', 'rx_oversize', 'rx_ring_full', 'rx_errors'] as const;
