/** Small Ethernet helpers for guest programs. */
import { parseMac } from '../device/mac-table.js';

export const BROADCAST = 'ff:ff:ff:ff:ff:ff';
/** An ethertype from the IEEE "local experimental" range, used by svnic's own test traffic. */
export const ETHERTYPE_EXPERIMENTAL = 0x88b5;

/** Build a frame: dst, src, ethertype, then `payload` (zero-padded to the 60-byte minimum). */
export function ethernetFrame(dst: string, src: string, ethertype: number, payload: Uint8Array | number = 0): Uint8Array {
  const body = typeof payload === 'number' ? new Uint8Array(payload) : payload;
  const f = new Uint8Array(Math.max(60, 14 + body.length));
  const d = parseMac(dst);
  const s = parseMac(src);
  if (!d || !s) throw new RangeError(`bad MAC in ethernetFrame(${dst}, ${src})`);
  f.set(d, 0);
  f.set(s, 6);
  f[12] = ethertype >> 8;
  f[13] = ethertype & 0xff;
  f.set(body, 14);
  return f;
}
