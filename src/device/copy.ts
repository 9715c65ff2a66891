/**
 * Frame copies on the data path.
 *
 * svnic keeps every frame at the same alignment wherever it lives: 4 mod 8 (guest buffers are
 * 64-byte aligned and the frame follows the 12-byte virtio header; the engine's staging buffer and
 * frame-ring slots use the same offset). V8 copies shared memory byte by byte when source and
 * destination differ mod 8 (about 5x slower for 1500 B), so this matters.
 *
 * `copyFrame` moves short frames as 32-bit words through views built once (a `subarray()` costs
 * about 30 ns, more than copying a 64-byte frame) and long frames with the native copy. The
 * word path needs both offsets 4-aligned and never writes past `len`.
 */
export function copyFrame(dst: Uint8Array, dst32: Int32Array, dOff: number, src: Uint8Array, src32: Int32Array, sOff: number, len: number): void {
  if (len <= 256 && ((dOff | sOff) & 3) === 0) {
    const words = len >>> 2;
    const d = dOff >>> 2;
    const s = sOff >>> 2;
    for (let i = 0; i < words; i++) dst32[d + i] = src32[s + i]!;
    for (let i = words << 2; i < len; i++) dst[dOff + i] = src[sOff + i]!;
  } else {
    copyBytes(dst, dOff, src, sOff, len);
  }
}

/** Copy without word views: a byte loop for a few bytes, the native copy otherwise. */
export function copyBytes(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, len: number): void {
  if (len <= 16) {
    for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i]!;
  } else {
    dst.set(src.subarray(srcOff, srcOff + len), dstOff);
  }
}
