/**
 * The engine thread's main loop (Engine.run): poll while busy, spin, then sleep on the engine's
 * wake word, with a periodic sweep and short naps while guests wait only for uplink room. One
 * iteration of work is Engine.step(); this file decides when to call it and how long to sleep.
 */
import { W } from '../layout/doorbell.js';
import { EC } from '../layout/counters.js';
import type { Engine } from './engine.js';

/** How long an engine whose guests wait only for uplink room sleeps before looking again (ms). */
export const UPLINK_NAP_MS = 0.05;

/** Is anything waiting that step() would handle? Used before sleeping. */
function hasWork(e: Engine): boolean {
  const db = e.db;
  return Atomics.load(db, W.SUMMARY) !== 0 || Atomics.load(e.ctl, W.CONTROL) !== 0 ||
    e.active.length !== 0 || e.sw.ringsPending() || (e.qos !== null && e.qos.hasWork());
}

/**
 * The engine thread's main loop: poll while busy, spin `spinUs`, then sleep on the wake word.
 * Every `sweepMs`, busy or idle, it sweeps all VIFs (bounds the effect of a lost doorbell).
 * Returns once Engine.stop() was called.
 */
export function runEngine(e: Engine): void {
  const c = e.c;
  const ec = e.ec;
  const db = e.db;
  const sweepMs = e.cfg.sweepMs;
  let last = performance.now();
  let lastSweep = last;
  let busy = false; // did the previous iteration find work?
  let idleSince = -1;
  while (!e.stopped) {
    // One clock read per iteration: the time since the last read goes to busy or idle
    // according to what the previous iteration found.
    const now = performance.now();
    c[ec + (busy ? EC.busy_ns : EC.idle_ns)] += (now - last) * 1e6;
    last = now;
    if (now - lastSweep >= sweepMs) {
      lastSweep = now;
      e.sweep();
    }
    busy = e.step(now) !== 0;
    if (busy) {
      idleSince = -1;
      continue;
    }
    if (idleSince < 0) idleSince = now;
    // Spin only while waiting for input; waiting for uplink room is no reason to hold the CPU.
    if (!e.uplinkBlocked && (now - idleSince) * 1000 < e.cfg.spinUs) continue;
    // Going to sleep: announce it, then re-check every source (no lost wake-up; doorbell.ts).
    Atomics.store(db, W.SLEEPING, 1);
    const seen = Atomics.load(db, W.WAKE);
    // Guest frames waiting only for room on the uplink: nap briefly instead of spinning, so the
    // ring's consumer (often sharing this core) gets the CPU; any doorbell ends the nap.
    const blockedOnly = e.uplinkBlocked && Atomics.load(db, W.SUMMARY) === 0 &&
      Atomics.load(e.ctl, W.CONTROL) === 0 && !e.sw.ringsPending();
    if (!blockedOnly && hasWork(e)) {
      Atomics.store(db, W.SLEEPING, 0);
      continue;
    }
    const qosWait = e.qos !== null ? e.qos.nextDeadline(now) : Infinity;
    const timeout = blockedOnly ? UPLINK_NAP_MS : Math.min(e.nextIrqDeadline(now), lastSweep + sweepMs - now, qosWait);
    c[ec + EC.sleeps] += 1;
    const r = Atomics.wait(db, W.WAKE, seen, Math.max(timeout, 0));
    Atomics.store(db, W.SLEEPING, 0);
    if (r !== 'timed-out') c[ec + EC.wakeups] += 1;
    idleSince = -1;
  }
}
