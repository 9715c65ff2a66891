/**
 * In-place left rotation of an array (three reversals; no allocation, so it may run on the data
 * path): element k becomes element 0. Engines and the driver domain use it to start the next
 * iteration at the first VIF they had to skip, so that when the way out (uplink, NIC) is the
 * bottleneck, the VIFs at the end of the active list are not starved by those at its start.
 */
export function rotateLeft<T>(a: T[], k: number): void {
  const n = a.length;
  if (n < 2 || k <= 0 || k >= n) return;
  reverse(a, 0, k - 1);
  reverse(a, k, n - 1);
  reverse(a, 0, n - 1);
}

function reverse<T>(a: T[], i: number, j: number): void {
  for (; i < j; i++, j--) {
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}
