/**
 * Counters of the guest network stack. Every frame handed to NetStack.input() ends in exactly one
 * of: a delivery counter (arp_in, icmp_echo_answered, icmp_echo_replies, udp_delivered) or a drop
 * counter (the rest of the `in` list). `inputBalance()` checks that law in tests.
 */
export const NET_IN_OK = ['arp_in', 'icmp_echo_answered', 'icmp_echo_replies', 'udp_delivered'] as const;
export const NET_IN_DROPS = [
  'eth_short', 'eth_not_for_us', 'eth_unknown_type',
  'arp_short', 'arp_bad_format', 'arp_bad_op', 'arp_not_for_us',
  'ip_short', 'ip_bad_version', 'ip_bad_ihl', 'ip_bad_length', 'ip_bad_checksum', 'ip_fragment', 'ip_ttl_zero',
  'ip_not_for_us', 'ip_bad_source', 'ip_unknown_proto',
  'icmp_short', 'icmp_bad_checksum', 'icmp_other_type', 'icmp_unmatched_reply', 'icmp_broadcast_ignored',
  'udp_short', 'udp_bad_length', 'udp_bad_checksum', 'udp_no_socket',
] as const;
export const NET_OUT = [
  'frames_out', 'arp_requests_sent', 'arp_replies_sent', 'ip_out', 'udp_sent',
  // output drops
  'out_ring_full', 'out_no_route', 'out_too_big', 'arp_queue_full', 'arp_unresolved',
] as const;
export const NET_OTHER = ['arp_learned', 'arp_expired'] as const;

export type NetCounter = (typeof NET_IN_OK)[number] | (typeof NET_IN_DROPS)[number] | (typeof NET_OUT)[number] | (typeof NET_OTHER)[number];
export type NetStats = Record<NetCounter, number> & { frames_in: number };

export function newNetStats(): NetStats {
  const s = { frames_in: 0 } as NetStats;
  for (const k of [...NET_IN_OK, ...NET_IN_DROPS, ...NET_OUT, ...NET_OTHER]) s[k] = 0;
  return s;
}

/** frames_in minus every input outcome: 0 when each input frame was delivered or counted once. */
export function inputBalance(s: NetStats): number {
  let n = s.frames_in;
  for (const k of NET_IN_OK) n -= s[k];
  for (const k of NET_IN_DROPS) n -= s[k];
  return n;
}
