/**
 * Copy bytes between typed arrays without a subarray() per small frame: a subarray costs about
 * 30 ns (MACHINE-NOTES), more than a byte loop for short frames. Long frames use the native copy.
 */
export function copyBytes(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, len: number): void {
  if (len <= 96) {
    for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i]!;
  } else {
    dst.set(src.subarray(srcOff, srcOff + len), dstOff);
  }
}
