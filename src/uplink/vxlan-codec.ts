/**
 * VXLAN encapsulation (RFC 7348) without I/O: the 8-byte header, the checks on a received packet,
 * and the flow hash that picks the outer UDP source port. Everything works on byte arrays and
 * offsets; nothing allocates.
 *
 * ```
 *  VXLAN header (RFC 7348, 5), after the outer UDP header, before the inner Ethernet frame
 *  0                   1                   2                   3
 *  +-+-+-+-+-+-+-+-+-------------------------------------------------+
 *  |R|R|R|R|I|R|R|R|            Reserved (24 bits)                   |
 *  +-+-+-+-+-+-+-+-+-------------------------------------------------+
 *  |          VXLAN Network Identifier (VNI, 24 bits)  | Reserved (8) |
 *  +---------------------------------------------------+--------------+
 * ```
 */

/** IANA-assigned UDP port for VXLAN (RFC 7348, 5). */
export const VXLAN_PORT = 4789;
export const VXLAN_HEADER = 8;
/** The I flag: "MUST be set to 1 for a valid VNI" (RFC 7348, 5). */
export const VXLAN_FLAG_I = 0x08;
export const MAX_VNI = 0xffffff;
/** Outer IPv4 header + UDP header + VXLAN header added to every inner frame. */
export const OUTER_IPV4 = 20 + 8 + VXLAN_HEADER;
/** Outer IPv6 header + UDP header + VXLAN header. */
export const OUTER_IPV6 = 40 + 8 + VXLAN_HEADER;
/** An inner frame must hold at least an Ethernet header. */
export const MIN_INNER = 14;
/** RFC 7348, 5: the source port "is RECOMMENDED" to lie in the dynamic range 49152-65535. */
export const SOURCE_PORT_MIN = 49152;
export const SOURCE_PORT_MAX = 65535;

/**
 * Counters of a VXLAN uplink, in layout order (layout/uplink-counters.ts). Every dropped packet or
 * frame moves exactly one counter ending in a drop reason.
 */
export const VXLAN_COUNTERS = [
  // toward the network: inner frames taken from the engines
  'tx_frames', 'tx_bytes', 'tx_packets', 'tx_flooded', 'tx_unicast_learned',
  'tx_oversize', 'tx_no_vni', 'tx_no_remote', 'tx_send_errors', 'tx_bad_len',
  // from the network: UDP datagrams on the VXLAN port
  'rx_packets', 'rx_bytes', 'rx_frames',
  'rx_short', 'rx_bad_flags', 'rx_unknown_vni', 'rx_inner_short', 'rx_oversize', 'rx_ring_full',
  'rx_other_port',
  // flood-and-learn
  'learned', 'learn_moved', 'learn_full', 'aged_out',
] as const;
export type VxlanCounter = (typeof VXLAN_COUNTERS)[number];
export const VXLAN_DROP_COUNTERS: readonly VxlanCounter[] = [
  'tx_oversize', 'tx_no_vni', 'tx_no_remote', 'tx_send_errors', 'tx_bad_len',
  'rx_short', 'rx_bad_flags', 'rx_unknown_vni', 'rx_inner_short', 'rx_oversize', 'rx_ring_full',
];

/** Write the 8-byte header at b[off..]: flags I, reserved zero (RFC 7348, 5: "MUST be set to zero on transmission"). */
export function writeVxlanHeader(b: Uint8Array, off: number, vni: number): void {
  b[off] = VXLAN_FLAG_I;
  b[off + 1] = 0;
  b[off + 2] = 0;
  b[off + 3] = 0;
  b[off + 4] = (vni >>> 16) & 0xff;
  b[off + 5] = (vni >>> 8) & 0xff;
  b[off + 6] = vni & 0xff;
  b[off + 7] = 0;
}

/** Reasons parseVxlan() rejects a packet (negative results). */
export const PARSE_SHORT = -1;
export const PARSE_BAD_FLAGS = -2;
export const PARSE_INNER_SHORT = -3;

/**
 * Check a received UDP payload of `len` bytes at b[0..]. Returns the VNI, or a negative PARSE_*
 * reason. Reserved bits are ignored on receipt as RFC 7348, 5 requires; only the I flag matters.
 */
export function parseVxlan(b: Uint8Array, len: number): number {
  if (len < VXLAN_HEADER) return PARSE_SHORT;
  if ((b[0]! & VXLAN_FLAG_I) === 0) return PARSE_BAD_FLAGS;
  if (len - VXLAN_HEADER < MIN_INNER) return PARSE_INNER_SHORT;
  return (b[4]! << 16) | (b[5]! << 8) | b[6]!;
}

/**
 * A hash of the inner frame's flow (RFC 7348, 5: "a hash of fields from the inner packet"): MACs,
 * ethertype and, for IPv4, protocol and addresses, plus TCP/UDP ports of unfragmented packets.
 * Every read is bounds-checked against `len` (the frame comes from a guest). FNV-1a, 32 bits.
 */
export function flowHash(b: Uint8Array, off: number, len: number): number {
  let h = 0x811c9dc5;
  const mix = (from: number, to: number): void => {
    for (let i = from; i < to; i++) h = Math.imul(h ^ b[off + i]!, 0x01000193);
  };
  mix(0, Math.min(14, len));
  if (len >= 34 && b[off + 12] === 0x08 && b[off + 13] === 0x00) {
    const ihl = (b[off + 14]! & 0x0f) * 4;
    mix(23, 24); // protocol
    mix(26, 34); // source and destination address
    const proto = b[off + 23]!;
    const frag = ((b[off + 20]! & 0x3f) << 8) | b[off + 21]!; // MF flag + fragment offset
    if ((proto === 6 || proto === 17) && frag === 0 && ihl >= 20 && len >= 14 + ihl + 4) mix(14 + ihl, 14 + ihl + 4);
  }
  return h >>> 0;
}

/** Bytes a frame of `inner` bytes takes on an IPv4/IPv6 path. */
export const outerBytes = (inner: number, ipv6: boolean): number => inner + (ipv6 ? OUTER_IPV6 : OUTER_IPV4);
