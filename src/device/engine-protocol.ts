/** Messages from the control plane to an engine (control only; never packets). */
import type { VifSpec } from './engine-vif.js';
import type { VifChange } from './engine.js';
import type { MacEntry } from './mac-table.js';

export interface RingEnd {
  ring: SharedArrayBuffer;
  /** Wake page of the ring's consumer. */
  wake: SharedArrayBuffer;
}

export type EngineCommand = { reqId: number } & (
  | { op: 'add-vif'; spec: VifSpec }
  | { op: 'remove-vif'; slot: number }
  | { op: 'change-vif'; change: VifChange }
  | { op: 'fdb'; entries: MacEntry[]; slotEngine: number[] }
  | { op: 'fwd'; out: (RingEnd | null)[]; in: SharedArrayBuffer[] }
  | { op: 'uplink'; toUplink: RingEnd | null; fromUplink: SharedArrayBuffer[]; reflect: boolean }
  | { op: 'capture'; ring: import('../capture/capture-ring.js').CaptureRingSpec; slots: SharedArrayBuffer }
  | { op: 'sync' }
  | { op: 'stop' }
);

export type EngineReply =
  | { type: 'ack'; reqId: number; result?: unknown; error?: string }
  | { type: 'event'; event: import('./engine.js').EngineEvent };
