/**
 * Counters of an uplink's own thread (VXLAN, TAP): one row of float64 in a SharedArrayBuffer the
 * uplink worker writes (single writer) and the control plane reads at any time without messaging.
 *
 * ```
 *  uplink counters SharedArrayBuffer (device-owned)
 *  0 +---------------------------------------------+
 *    | f64 x names.length, in the order of `names` |
 *    +---------------------------------------------+
 * ```
 * The names are the uplink kind's own list (e.g. VXLAN_COUNTERS in uplink/vxlan-codec.ts); both
 * ends take them from the same constant, so the layout cannot disagree.
 */

export function createUplinkCounters(names: readonly string[]): SharedArrayBuffer {
  return new SharedArrayBuffer(8 * names.length);
}

/** name -> index, for the writer. */
export function counterIndex<N extends string>(names: readonly N[]): { [K in N]: number } {
  return Object.fromEntries(names.map((n, i) => [n, i])) as { [K in N]: number };
}

export function readUplinkCounters(sab: SharedArrayBuffer, names: readonly string[]): Record<string, number> {
  const f64 = new Float64Array(sab);
  const out: Record<string, number> = {};
  names.forEach((n, i) => (out[n] = f64[i]!));
  return out;
}
