/**
 * Several engines, one uplink (layout/qos.ts, "demand" lines): the rate one engine shapes its
 * uplink traffic to, from every engine's published demand. Pure.
 *
 *   rate = own reserved + (capacity - all reserved) x own weight / all weights
 *
 * "Reserved" is guarantees plus the bit-rate limits of limited VIFs (they claim what they can use).
 * Guarantees are admitted within the capacity but limits are not: reservations above the capacity
 * are scaled down to it. With no weight anywhere the rest is split evenly; an engine never goes
 * below `floor` x capacity (a trickle, so a VIF that starts sending is not stuck until the next
 * recompute).
 */
export function portShare(capacity: number, engines: number, ownWeight: number, ownGuaranteed: number,
  allWeight: number, allGuaranteed: number, floor = 0.001): number {
  let rate: number;
  if (allGuaranteed > capacity) rate = (capacity * ownGuaranteed) / allGuaranteed;
  else {
    const rest = capacity - allGuaranteed;
    rate = ownGuaranteed + (allWeight > 0 ? (rest * ownWeight) / allWeight : rest / engines);
  }
  return rate < capacity * floor ? capacity * floor : rate;
}
