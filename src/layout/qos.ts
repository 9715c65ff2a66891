/**
 * The QoS table: per-VIF QoS parameters and the device's port parameters in one device-owned
 * SharedArrayBuffer (never granted to a guest: a guest must not set its own limits). The control
 * plane is the only writer; every engine reads it. Engines read it without messages: one
 * Atomics.load of GEN per loop iteration, and a row only when GEN moved.
 *
 * ```
 *  QoS table (SharedArrayBuffer, device-owned)
 *  0x000 +--------------------------------------------------------------+
 *        | MAGIC u32 'SVQS' | VERSION u32 | GEN u32 (+1 after any row)    |
 *  0x040 +--------------------------------------------------------------+ PORT row (own line)
 *        | +0x00 SEQ u32 (seqlock)                                      |
 *        | +0x08 capacity bits/s f64 (0 = unknown: no port shaping)     |
 *        | +0x10 priority share f64 (0..1, of the capacity)             |
 *        | +0x18 quantum bytes f64 (DRR bytes per unit of weight)       |
 *  0x080 +--------------------------------------------------------------+ ROWS_OFFSET
 *        | VIF row 0 (ROW_BYTES = 128):                                 |
 *        | +0x00 SEQ u32 (seqlock)   +0x04 FLAGS u32 (bit 0: any QoS)   |
 *        | +0x08 weight f64          +0x10 priority f64 (0..7)          |
 *        | +0x18 guest TX bits/s f64 +0x20 guest TX burst bytes f64     |
 *        | +0x28 guest TX frames/s   +0x30 guest TX burst frames        |
 *        | +0x38 guest RX bits/s f64 +0x40 guest RX burst bytes f64     |
 *        | +0x48 guest RX frames/s   +0x50 guest RX burst frames        |
 *        | +0x58 guaranteed bits/s f64 (toward the uplink)              |
 *        | VIF row 1 ...   (maxVifs rows)                               |
 *        +--------------------------------------------------------------+ demandOffset(maxVifs)
 *        | engine 0 demand (64 B, written only by engine 0):            |
 *        | +0x00 weight f64: sum of the weights of its VIFs waiting for |
 *        |       the uplink    +0x08 guaranteed bits/s f64 of those VIFs|
 *        | engine 1 demand ...  (engines lines)                          |
 *        +--------------------------------------------------------------+
 * ```
 *
 * The demand lines let engines share one uplink by weight: each engine shapes its uplink traffic
 * to (its guarantees) + (capacity - all guarantees) x (its weight / all weights), recomputed
 * about every 0.5 ms from the other engines' lines (device/qos/engine-qos.ts). An engine writes
 * only its own line (plain float64 stores; a reader may see an old value, never a torn one on
 * x86-64, as with the counters).
 *
 * Seqlock protocol (one writer): the writer adds 1 to the row's SEQ (odd: writing), stores the
 * fields, adds 1 again (even), then adds 1 to GEN. A reader loads SEQ, skips the row if odd,
 * reads the fields, loads SEQ again and keeps what it read only if SEQ did not change; otherwise
 * it tries again on its next iteration (it does not advance its copy of GEN). Rates of 0 mean
 * "unlimited"; burst 0 means "default" (device/qos/token-bucket.ts).
 */

export const QOS_MAGIC = 0x53515653; // 'SVQS'
export const QOS_LAYOUT_VERSION = 1;
export const QOS_HEADER = { MAGIC: 0, VERSION: 1, GEN: 2, ENGINES: 3 } as const; // Int32 indices
export const PORT_OFFSET = 0x40;
export const ROWS_OFFSET = 0x80;
export const ROW_BYTES = 128;

/** Float64 field offsets inside the port row (bytes). */
export const PORT = { SEQ: 0x00, CAPACITY: 0x08, PRIORITY_SHARE: 0x10, QUANTUM: 0x18 } as const;

/** Field offsets inside a VIF row (bytes). */
export const Q = {
  SEQ: 0x00,
  FLAGS: 0x04,
  WEIGHT: 0x08,
  PRIORITY: 0x10,
  TX_BPS: 0x18,
  TX_BURST_BYTES: 0x20,
  TX_PPS: 0x28,
  TX_BURST_FRAMES: 0x30,
  RX_BPS: 0x38,
  RX_BURST_BYTES: 0x40,
  RX_PPS: 0x48,
  RX_BURST_FRAMES: 0x50,
  MIN_BPS: 0x58,
} as const;

export const FLAG_QOS = 1;

export const rowOffset = (slot: number): number => ROWS_OFFSET + slot * ROW_BYTES;
export const DEMAND_BYTES = 64;
export const demandOffset = (maxVifs: number): number => ROWS_OFFSET + maxVifs * ROW_BYTES;
/** Float64 index of engine e's demand line (weight at +0, guaranteed bits/s at +1). */
export const demandIndex = (maxVifs: number, engine: number): number => (demandOffset(maxVifs) + engine * DEMAND_BYTES) / 8;

/** The numbers of one VIF row, as the engine holds them. */
export interface QosRow {
  enabled: boolean;
  weight: number;
  priority: number;
  txBps: number;
  txBurstBytes: number;
  txPps: number;
  txBurstFrames: number;
  rxBps: number;
  rxBurstBytes: number;
  rxPps: number;
  rxBurstFrames: number;
  minBps: number;
}

export interface QosPort {
  capacityBps: number;
  priorityShare: number;
  quantum: number;
}

export const DEFAULT_QUANTUM = 6072; // 4 full 1518 B frames per unit of weight and turn
export const DEFAULT_PRIORITY_SHARE = 0.5;

export function createQosTable(maxVifs: number, engines = 1): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(demandOffset(maxVifs) + engines * DEMAND_BYTES);
  const i = new Int32Array(sab);
  i[QOS_HEADER.MAGIC] = QOS_MAGIC;
  i[QOS_HEADER.VERSION] = QOS_LAYOUT_VERSION;
  i[QOS_HEADER.ENGINES] = engines;
  const f = new Float64Array(sab);
  f[(PORT_OFFSET + PORT.PRIORITY_SHARE) / 8] = DEFAULT_PRIORITY_SHARE;
  f[(PORT_OFFSET + PORT.QUANTUM) / 8] = DEFAULT_QUANTUM;
  for (let s = 0; s < maxVifs; s++) f[(rowOffset(s) + Q.WEIGHT) / 8] = 1;
  return sab;
}

/** Check magic, version and size on attach. */
export function checkQosTable(sab: SharedArrayBuffer, maxVifs: number, engines: number): void {
  const i = new Int32Array(sab);
  if (i[QOS_HEADER.MAGIC] !== QOS_MAGIC || i[QOS_HEADER.VERSION] !== QOS_LAYOUT_VERSION ||
    i[QOS_HEADER.ENGINES]! < engines || sab.byteLength < demandOffset(maxVifs) + engines * DEMAND_BYTES) {
    throw new RangeError('not a QoS table of this layout version and size');
  }
}

const ROW_FIELDS: [keyof QosRow, number][] = [
  ['weight', Q.WEIGHT], ['priority', Q.PRIORITY],
  ['txBps', Q.TX_BPS], ['txBurstBytes', Q.TX_BURST_BYTES], ['txPps', Q.TX_PPS], ['txBurstFrames', Q.TX_BURST_FRAMES],
  ['rxBps', Q.RX_BPS], ['rxBurstBytes', Q.RX_BURST_BYTES], ['rxPps', Q.RX_PPS], ['rxBurstFrames', Q.RX_BURST_FRAMES],
  ['minBps', Q.MIN_BPS],
];

/** Writer side (control plane): store a row under the seqlock and bump GEN. */
export function writeQosRow(sab: SharedArrayBuffer, slot: number, row: QosRow): void {
  const i = new Int32Array(sab);
  const f = new Float64Array(sab);
  const base = rowOffset(slot);
  Atomics.add(i, (base + Q.SEQ) >> 2, 1);
  for (const [k, off] of ROW_FIELDS) f[(base + off) / 8] = row[k] as number;
  i[(base + Q.FLAGS) >> 2] = row.enabled ? FLAG_QOS : 0;
  Atomics.add(i, (base + Q.SEQ) >> 2, 1);
  Atomics.add(i, QOS_HEADER.GEN, 1);
}

/** Writer side: store the port row and bump GEN. */
export function writeQosPort(sab: SharedArrayBuffer, port: QosPort): void {
  const i = new Int32Array(sab);
  const f = new Float64Array(sab);
  Atomics.add(i, (PORT_OFFSET + PORT.SEQ) >> 2, 1);
  f[(PORT_OFFSET + PORT.CAPACITY) / 8] = port.capacityBps;
  f[(PORT_OFFSET + PORT.PRIORITY_SHARE) / 8] = port.priorityShare;
  f[(PORT_OFFSET + PORT.QUANTUM) / 8] = port.quantum;
  Atomics.add(i, (PORT_OFFSET + PORT.SEQ) >> 2, 1);
  Atomics.add(i, QOS_HEADER.GEN, 1);
}

/**
 * Reader side: copy a row into `out` if it is stable. Returns its SEQ (even), or -1 when the
 * writer was in the middle of it (try again later). Allocation-free.
 */
export function readQosRow(i: Int32Array, f: Float64Array, slot: number, out: QosRow): number {
  const base = rowOffset(slot);
  const s1 = Atomics.load(i, (base + Q.SEQ) >> 2);
  if ((s1 & 1) !== 0) return -1;
  out.enabled = (i[(base + Q.FLAGS) >> 2]! & FLAG_QOS) !== 0;
  out.weight = f[(base + Q.WEIGHT) / 8]!;
  out.priority = f[(base + Q.PRIORITY) / 8]!;
  out.txBps = f[(base + Q.TX_BPS) / 8]!;
  out.txBurstBytes = f[(base + Q.TX_BURST_BYTES) / 8]!;
  out.txPps = f[(base + Q.TX_PPS) / 8]!;
  out.txBurstFrames = f[(base + Q.TX_BURST_FRAMES) / 8]!;
  out.rxBps = f[(base + Q.RX_BPS) / 8]!;
  out.rxBurstBytes = f[(base + Q.RX_BURST_BYTES) / 8]!;
  out.rxPps = f[(base + Q.RX_PPS) / 8]!;
  out.rxBurstFrames = f[(base + Q.RX_BURST_FRAMES) / 8]!;
  out.minBps = f[(base + Q.MIN_BPS) / 8]!;
  return Atomics.load(i, (base + Q.SEQ) >> 2) === s1 ? s1 : -1;
}

/** Reader side for the port row; same contract as readQosRow. */
export function readQosPort(i: Int32Array, f: Float64Array, out: QosPort): number {
  const s1 = Atomics.load(i, (PORT_OFFSET + PORT.SEQ) >> 2);
  if ((s1 & 1) !== 0) return -1;
  out.capacityBps = f[(PORT_OFFSET + PORT.CAPACITY) / 8]!;
  out.priorityShare = f[(PORT_OFFSET + PORT.PRIORITY_SHARE) / 8]!;
  out.quantum = f[(PORT_OFFSET + PORT.QUANTUM) / 8]!;
  return Atomics.load(i, (PORT_OFFSET + PORT.SEQ) >> 2) === s1 ? s1 : -1;
}

export const emptyQosRow = (): QosRow => ({
  enabled: false, weight: 1, priority: 0, txBps: 0, txBurstBytes: 0, txPps: 0, txBurstFrames: 0,
  rxBps: 0, rxBurstBytes: 0, rxPps: 0, rxBurstFrames: 0, minBps: 0,
});
