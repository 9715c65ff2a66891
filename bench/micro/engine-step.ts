/**
 * Micro-benchmark: the device engine's CPU cost per frame, in one thread, with no other core
 * involved (so no cache-line transfers and no scheduling). A guest driver queues 32 frames, the
 * engine runs one step(), and so on; only the time inside step() is charged to the engine.
 *
 *   npx tsc -p . && node dist/bench/micro/engine-step.js [frameBytes=64] [null|ring]
 *
 * `null`: the frames go to the null uplink (counted, not copied), as in svnic-uplink.
 * `ring`: the frames are copied into an uplink frame ring (as for echo, wire, VXLAN uplinks),
 * which this thread drains after each step.
 *
 * Third argument (QoS, docs/qos.md): `none` (default) builds the engine without a QoS table;
 * `off` gives it one with nothing configured (as every Device does: QoS present but off);
 * `on` also sets the VIF's weight to 2, so every frame goes through the QoS scheduler.
 */
import { Engine } from '../../src/device/engine.js';
import { createWakePage } from '../../src/layout/doorbell.js';
import { createCounters, readEngineCounters } from '../../src/layout/counters.js';
import { createFrameRing, FrameRing } from '../../src/layout/frame-ring.js';
import { DEVICE_FEATURES, createVifMemory } from '../../src/hypervisor/device.js';
import { VirtioNetDriver } from '../../src/guest/driver.js';
import { alignedFor, makeFrame, macBytes } from '../common.js';
import { createQosTable, writeQosRow, emptyQosRow } from '../../src/layout/qos.js';

const frameBytes = Number(process.argv[2] ?? 64);
const mode = process.argv[3] ?? 'null';
const qosMode = process.argv[4] ?? 'none';
const MAC = '02:53:00:00:00:01';
const Q = 256;

const sab = createVifMemory(0, Q, 1500, MAC);

const doorbell = createWakePage(1024);
const counters = createCounters(1024, 1);
const qos = qosMode === 'none' ? undefined : createQosTable(1024);
if (qos && qosMode === 'on') writeQosRow(qos, 0, { ...emptyQosRow(), enabled: true, weight: 2 });
const eng = new Engine({ index: 0, engines: 1, maxVifs: 1024, doorbell, control: createWakePage(32), counters, irqMode: 'direct', spinUs: 100, sweepMs: 100, batch: 32, qos });
eng.addVif({
  slot: 0, sab, queueSize: Q, mac: MAC, mtu: 1500, segment: 0, linkUp: true, promiscuous: false, multicast: [],
  coalesce: { frames: 1, usecs: 0 }, deviceFeatures: DEVICE_FEATURES,
});
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

let engineMs = 0;
function rounds(n: number): void {
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < 32; k++) {
      const s = nic.reserveTx();
      if (s < 0) break;
      nic.bytes.set(frame, nic.txOffset(s));
      nic.commitTx(s, frameBytes);
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
}
const f64 = new Float64Array(counters);
rounds(20_000);
engineMs = 0;
const before = readEngineCounters(f64, 1024, 0).uplink_tx_frames;
const t0 = performance.now();
rounds(100_000);
const total = performance.now() - t0;
const frames = readEngineCounters(f64, 1024, 0).uplink_tx_frames - before;
console.log(`${frameBytes} B to the ${mode === 'ring' ? 'uplink ring' : 'null uplink'}, QoS ${qosMode}: ${frames} frames, ` +
  `engine ${((engineMs * 1e6) / frames).toFixed(1)} ns/frame, guest driver ${(((total - engineMs) * 1e6) / frames).toFixed(1)} ns/frame`);
