/**
 * Several engines, one uplink (layout/qos.ts, "demand" lines): the rate one engine shapes its
 * uplink traffic to, from every engine's published demand. Pure.
 *
 *   rate = own guarantees + (capacity - all guarantees) x own weight / all weights
 *
 * With no demand anywhere the rest is split evenly; an engine never goes below `floor` x capacity
 * (a trickle, so a VIF that starts sending is not stuck until the next recompute).
 */
export function portShare(capacity: number, engines: number, ownWeight: number, ownGuaranteed: number,
  allWeight: number, allGuaranteed: number, floor = 0.001): number {
  const rest = capacity > allGuaranteed ? capacity - allGuaranteed : 0;
  const rate = ownGuaranteed + (allWeight > 0 ? (rest * ownWeight) / allWeight : rest / engines);
  return rate < capacity * floor ? capacity * floor : rate;
}
