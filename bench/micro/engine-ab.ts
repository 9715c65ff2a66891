/**
 * Micro-benchmark: the engine's ns per frame inside step(), like engine-step.ts, but for several
 * engine builds and QoS modes in ONE process, in interleaved short bursts, so that load from other
 * processes on a shared machine hits every variant alike. Reports the median and the minimum of
 * the bursts per variant.
 *
 *   npx tsc -p . && node dist/bench/micro/engine-ab.js [frameBytes=64] [null|ring] [bursts=30] [OTHER_DIST]
 *
 * Variants: this build without a QoS table (`none`), with a table and nothing set (`off`: what a
 * Device has), with the VIF at weight 2 (`on`: every frame through DRR), and, with OTHER_DIST (the
 * dist/ directory of another build, e.g. the tree before QoS), that build's engine (`other`).
 */
import { pathToFileURL } from 'node:url';
import { join, resolve } from 'node:path';
import { Engine } from '../../src/device/engine.js';
import { createWakePage } from '../../src/layout/doorbell.js';
import { createCounters } from '../../src/layout/counters.js';
import { createFrameRing, FrameRing } from '../../src/layout/frame-ring.js';
import { createQosTable, writeQosRow, emptyQosRow } from '../../src/layout/qos.js';
import { DEVICE_FEATURES, createVifMemory } from '../../src/hypervisor/device.js';
import { VirtioNetDriver } from '../../src/guest/driver.js';
import { alignedFor, makeFrame, macBytes, median } from '../common.js';

const frameBytes = Number(process.argv[2] ?? 64);
const mode = process.argv[3] ?? 'null';
const bursts = Number(process.argv[4] ?? 30);
const other = process.argv[5];
const MAC = '02:53:00:00:00:01';
const Q = 256;
const ROUNDS = 5000; // x 32 frames per burst

type EngineCtor = new (cfg: ConstructorParameters<typeof Engine>[0]) => Engine;

function variant(name: string, Ctor: EngineCtor, qos: 'none' | 'off' | 'on') {
  const sab = createVifMemory(0, Q, 1500, MAC);
  const doorbell = createWakePage(1024);
  const counters = createCounters(1024, 1);
  const table = qos === 'none' ? undefined : createQosTable(1024);
  if (table && qos === 'on') writeQosRow(table, 0, { ...emptyQosRow(), enabled: true, weight: 2 });
  const eng = new Ctor({ index: 0, engines: 1, maxVifs: 1024, doorbell, control: createWakePage(32), counters, irqMode: 'direct', spinUs: 100, sweepMs: 100, batch: 32, ...(table ? { qos: table } : {}) });
  eng.addVif({ slot: 0, sab, queueSize: Q, mac: MAC, mtu: 1500, segment: 0, linkUp: true, promiscuous: false, multicast: [], coalesce: { frames: 1, usecs: 0 }, deviceFeatures: DEVICE_FEATURES });
  eng.setFdb([{ segment: 0, mac: MAC, slot: 0 }], [0]);
  let ring: FrameRing | null = null;
  if (mode === 'ring') {
    const r = createFrameRing(512, 9018);
    eng.sw.toUplink = new FrameRing(r).asProducer();
    ring = new FrameRing(r).asConsumer();
  }
  const nic = new VirtioNetDriver({ vifId: 'v', vif: sab, doorbell });
  eng.step(performance.now());
  const frame = alignedFor(makeFrame(frameBytes, macBytes('02:be:ef:00:00:01'), macBytes(MAC)), nic.txOffset(0));
  const samples: number[] = [];
  const burst = (record: boolean): void => {
    let engineMs = 0;
    let frames = 0;
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < 32; k++) {
        const s = nic.reserveTx();
        if (s < 0) break;
        nic.bytes.set(frame, nic.txOffset(s));
        nic.commitTx(s, frameBytes);
        frames++;
      }
      nic.flush();
      const t = performance.now();
      eng.step(t);
      engineMs += performance.now() - t;
      if (ring) {
        for (let s = ring.peek(); s >= 0; s = ring.peek()) ring.advance();
        ring.release();
      }
    }
    // Frames queued, not a counter: another build's counter layout may differ. All are taken:
    // 32 per step fit the batch and the ring, which the previous step emptied.
    if (record) samples.push((engineMs * 1e6) / frames);
  };
  return { name, burst, samples };
}

const variants = [variant('none', Engine, 'none'), variant('off', Engine, 'off'), variant('on', Engine, 'on')];
if (other) {
  const url = pathToFileURL(join(resolve(other), 'src/device/engine.js')).href;
  const { Engine: Other } = (await import(url)) as { Engine: EngineCtor };
  variants.unshift(variant('other', Other, 'none'));
}
for (const v of variants) for (let i = 0; i < 4; i++) v.burst(false); // warm up every variant
for (let b = 0; b < bursts; b++) for (const v of variants) v.burst(true);
console.log(`${frameBytes} B to the ${mode === 'ring' ? 'uplink ring' : 'null uplink'}: engine ns/frame over ${bursts} interleaved bursts of ${ROUNDS * 32} frames`);
for (const v of variants) {
  console.log(`  ${v.name.padEnd(6)} median ${median(v.samples).toFixed(1).padStart(6)}   min ${Math.min(...v.samples).toFixed(1).padStart(6)}`);
}
