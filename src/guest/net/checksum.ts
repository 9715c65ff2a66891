/**
 * The Internet checksum (RFC 1071; used by IPv4 RFC 791, ICMP RFC 792, UDP RFC 768): the 16-bit
 * one's complement of the one's complement sum of 16-bit words. `partialSum` lets UDP add its
 * pseudo-header. A correct packet sums (including its checksum field) to 0xffff, so
 * `checksum(...) === 0` verifies it.
 */

/** One's complement sum of b[off..off+len) added to `sum` (not folded, not complemented). */
export function partialSum(b: Uint8Array, off: number, len: number, sum = 0): number {
  let s = sum;
  const end = off + (len & ~1);
  for (let i = off; i < end; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (len & 1) s += b[off + len - 1]! << 8;
  return s;
}

/** Fold a partial sum to 16 bits and complement it. */
export function finish(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

export const checksum = (b: Uint8Array, off: number, len: number): number => finish(partialSum(b, off, len));
