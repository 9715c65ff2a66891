/**
 * Byte layout of a wake page: one per engine (its "doorbell page") and one per other sleeper
 * (interrupt router, uplink workers). It is how producers wake a consumer that sleeps.
 *
 * ```
 *  wake page (SharedArrayBuffer)
 *  0x000 +------------------------------------------------+
 *        | magic u32 'SVDB' | version u32                 |
 *  0x040 | SLEEPING i32: consumer sets 1 before it waits  |  own 64 B line
 *  0x080 | WAKE i32: producers add 1 and notify           |  own 64 B line
 *  0x0C0 | CONTROL i32: control plane sets 1 when it has  |  own 64 B line
 *        |   posted a control message (used only on pages |
 *        |   no guest sees: an engine's CONTROL word is   |
 *        |   on its private control page)                 |
 *  0x100 | SUMMARY i32: bit w set => bitmap word w dirty  |  own 64 B line
 *  0x140 | BITMAP i32 x (maxVifs / 32): bit s => VIF slot |
 *        |   s rang its doorbell (or has a pending irq)   |
 *        +------------------------------------------------+
 * ```
 *
 * Protocol for a producer (guest kick, ring producer, engine raising an interrupt):
 *   1. publish the work (avail idx / ring head) with Atomics.store;
 *   2. optionally set bit s: Atomics.or(BITMAP[s>>5]), then Atomics.or(SUMMARY, 1 << (s>>5));
 *   3. if Atomics.load(SLEEPING) === 1: Atomics.add(WAKE, 1); Atomics.notify(WAKE).
 * The consumer stores SLEEPING=1, re-checks every source, then Atomics.wait(WAKE, seen). Both sides
 * use sequentially consistent atomics, so either the producer sees SLEEPING=1 or the consumer's
 * re-check sees the work: no lost wake-up.
 *
 * Trust: an engine's doorbell page is mapped into every guest with a VIF on that engine, like a
 * device register page. A hostile guest can write any word of it. Setting bits costs the engine a
 * spurious check (bits past the bitmap are masked off); clearing another VIF's bit or SLEEPING
 * could hide a kick, so the engine sweeps every VIF each `sweepMs` whether busy or idle, bounding
 * the delay such a guest can cause; spamming WAKE keeps the engine awake (CPU, not correctness).
 * Control messages never depend on this page: the engine's CONTROL word is on a private page.
 */

export const WAKE_MAGIC = 0x42445653; // 'SVDB'
export const MAX_VIFS_PER_DEVICE = 1024; // SUMMARY has 32 bits, one per bitmap word
export const W = {
  MAGIC: 0x000 >> 2,
  VERSION: 0x004 >> 2,
  SLEEPING: 0x040 >> 2,
  WAKE: 0x080 >> 2,
  CONTROL: 0x0c0 >> 2,
  SUMMARY: 0x100 >> 2,
  BITMAP: 0x140 >> 2,
} as const;

export const wakePageBytes = (maxVifs: number): number => 0x140 + 4 * Math.ceil(maxVifs / 32);

export function createWakePage(maxVifs: number = MAX_VIFS_PER_DEVICE): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(wakePageBytes(maxVifs));
  const w = new Int32Array(sab);
  w[W.MAGIC] = WAKE_MAGIC;
  w[W.VERSION] = 1;
  return sab;
}

/** Producer side: wake the page's owner if it sleeps. */
export function wake(page: Int32Array): void {
  if (Atomics.load(page, W.SLEEPING) === 1) {
    Atomics.add(page, W.WAKE, 1);
    Atomics.notify(page, W.WAKE, 1);
  }
}

/**
 * Consumer side: take every rung slot (summary word first, so the cost is O(rung slots)) and call
 * `visit(slot)` for each; returns the sum of what `visit` returned. `summaryMask` keeps only the
 * summary bits that name real bitmap words (a guest may set the others).
 */
export function drainRung(page: Int32Array, summaryMask: number, visit: (slot: number) => number): number {
  let sum = Atomics.exchange(page, W.SUMMARY, 0) & summaryMask;
  let n = 0;
  while (sum !== 0) {
    const w = 31 - Math.clz32(sum);
    sum &= ~(1 << w);
    let bits = Atomics.exchange(page, W.BITMAP + w, 0);
    while (bits !== 0) {
      const b = 31 - Math.clz32(bits);
      bits &= ~(1 << b);
      n += visit((w << 5) | b);
    }
  }
  return n;
}

/** The SUMMARY bits that name bitmap words of a page sized for `maxVifs` slots. */
export const summaryMaskFor = (maxVifs: number): number => {
  const words = Math.ceil(maxVifs / 32);
  return words >= 32 ? -1 : (1 << words) - 1;
};

/** Producer side: mark slot `s` in the bitmap and wake the owner if it sleeps. */
export function ring(page: Int32Array, s: number): void {
  const word = s >>> 5;
  Atomics.or(page, W.BITMAP + word, 1 << (s & 31));
  Atomics.or(page, W.SUMMARY, 1 << word);
  wake(page);
}
